package vrrp

import (
	"context"
	"net/netip"
	"slices"
	"sync"

	"github.com/dsrlb/dsrlb/arp"
)

// Speaker is what a Gate needs of the component that answers ARP and
// neighbour discovery for the VIPs; *arp.Speaker implements it.
type Speaker interface {
	SetVIPs(vips []netip.Addr)
	Takeover(vips ...netip.Addr)
	SetBackends(backends []arp.Backend)
	AddEventHandler(fn func(arp.Event)) (remove func())
	Run(ctx context.Context) error
}

var _ Speaker = (*arp.Speaker)(nil)

// Gate ties a Router to an ARP speaker: it serves the VIPs on the segment
// only while the Router is master. Give the Gate to the balancer where it
// takes the speaker (dsr.Config.ARP: it has the same methods) and its
// HandleEvent to the Router (Config.OnEvent):
//
//   - on BecameMaster the speaker gets the VIPs and sends its burst of
//     gratuitous ARPs and unsolicited Neighbor Advertisements at once, then
//     refreshes them on its announce interval (arp.Config.AnnounceInterval);
//   - on Reasserted (a split brain healing) it sends the burst again;
//   - on BecameBackup, BecameFault and Stopped it stops answering for the
//     VIPs, so the master's MAC stays the only owner.
//
// Backend resolution (SetBackends) passes through in every state, so that a
// backup has its backends' MACs ready when it takes over. The zero Gate is
// not usable; create one with NewGate.
type Gate struct {
	sp Speaker

	mu     sync.Mutex
	vips   []netip.Addr
	master bool
}

// NewGate returns a Gate in front of sp. It starts as not master: sp serves
// no VIPs until the Router becomes master.
func NewGate(sp Speaker) *Gate {
	sp.SetVIPs(nil)
	return &Gate{sp: sp}
}

// SetVIPs records the VIPs to serve and passes them on while master.
func (g *Gate) SetVIPs(vips []netip.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.vips = slices.Clone(vips)
	if g.master {
		g.sp.SetVIPs(g.vips)
	}
}

// SetBackends passes the backends on to the speaker.
func (g *Gate) SetBackends(backends []arp.Backend) { g.sp.SetBackends(backends) }

// AddEventHandler subscribes fn to the speaker's events.
func (g *Gate) AddEventHandler(fn func(arp.Event)) (remove func()) {
	return g.sp.AddEventHandler(fn)
}

// Run runs the speaker.
func (g *Gate) Run(ctx context.Context) error { return g.sp.Run(ctx) }

// Master reports whether the Gate currently serves the VIPs.
func (g *Gate) Master() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.master
}

// HandleEvent follows a Router's event; use it as Config.OnEvent, or call
// it from one.
func (g *Gate) HandleEvent(e Event) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch e.Kind {
	case BecameMaster:
		g.master = true
		g.sp.SetVIPs(g.vips)
		// VIPs the speaker already served (it was master before) get no
		// burst from SetVIPs: restart it for all of them.
		g.sp.Takeover()
	case Reasserted:
		if g.master {
			g.sp.Takeover()
		}
	case BecameBackup, BecameFault, Stopped:
		g.master = false
		g.sp.SetVIPs(nil)
	}
}

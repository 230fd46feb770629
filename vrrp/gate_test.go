package vrrp

import (
	"context"
	"net/netip"
	"testing"

	"github.com/dsrlb/dsrlb/arp"
	"github.com/stretchr/testify/assert"
)

type fakeSpeaker struct {
	vips      []netip.Addr
	takeovers int
	backends  []arp.Backend
}

func (f *fakeSpeaker) SetVIPs(v []netip.Addr)                 { f.vips = v }
func (f *fakeSpeaker) Takeover(...netip.Addr)                 { f.takeovers++ }
func (f *fakeSpeaker) SetBackends(b []arp.Backend)            { f.backends = b }
func (f *fakeSpeaker) AddEventHandler(func(arp.Event)) func() { return func() {} }
func (f *fakeSpeaker) Run(context.Context) error              { return nil }

func TestGate(t *testing.T) {
	sp := &fakeSpeaker{vips: []netip.Addr{vip2}}
	g := NewGate(sp)
	assert.Empty(t, sp.vips, "a new gate serves nothing")

	g.SetVIPs([]netip.Addr{vip1})
	assert.Empty(t, sp.vips, "not master: the VIPs are kept back")
	g.SetBackends([]arp.Backend{{Addr: srcB}})
	assert.Len(t, sp.backends, 1, "backends are resolved in every state")

	g.HandleEvent(Event{Kind: BecameMaster})
	assert.True(t, g.Master())
	assert.Equal(t, []netip.Addr{vip1}, sp.vips)
	assert.Equal(t, 1, sp.takeovers, "a burst at once")

	g.SetVIPs([]netip.Addr{vip1, vip2})
	assert.Equal(t, []netip.Addr{vip1, vip2}, sp.vips, "master: changes pass through")

	g.HandleEvent(Event{Kind: Reasserted})
	assert.Equal(t, 2, sp.takeovers, "a split brain healing announces again")

	for _, k := range []Kind{BecameBackup, BecameFault, Stopped} {
		g.HandleEvent(Event{Kind: BecameMaster})
		g.HandleEvent(Event{Kind: k})
		assert.False(t, g.Master(), k.String())
		assert.Empty(t, sp.vips, "%s: stop answering for the VIPs", k)
	}
	n := sp.takeovers
	g.HandleEvent(Event{Kind: Reasserted})
	assert.Equal(t, n, sp.takeovers, "no announcement when not master")
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/netlab"
)

// haPair is two dsrlb daemons on one segment in one VRRP group: a on the
// lab's balancer host (priority 200), b on the second client host
// (priority 100), with the same seed and services.
type haPair struct {
	lab    *netlab.Lab
	bin    string
	a, b   *runningDaemon
	client *netlab.Host
}

func haConfig(lab *netlab.Lab, prio int) string {
	return labConfig(lab, []int{0, 1, 2}, fmt.Sprintf(`seed: 7
ha:
  vrid: 9
  priority: %d
  advert_interval: 100ms
`, prio))
}

// startOn runs the daemon binary on host h.
func startOn(t testing.TB, lab *netlab.Lab, h *netlab.Host, bin, config string) *runningDaemon {
	t.Helper()
	d := launchDaemon(t, lab, h, bin, config)
	for _, be := range backendAddrs(config) {
		d.waitMetric(`dsrlb_backend_resolved{backend="`+be+`",service="web"}`, 1)
		d.waitMetric(`dsrlb_backend_healthy{backend="`+be+`",service="web"}`, 1)
	}
	return d
}

func startHAPair(t *testing.T, bin string) *haPair {
	t.Helper()
	lab := netlab.NewT(t, &netlab.Config{Servers: 3, Clients: 2})
	p := &haPair{lab: lab, bin: bin, client: lab.Clients[0]}
	p.a = startOn(t, lab, lab.Balancer, bin, haConfig(lab, 200))
	p.a.waitMetric(`dsrlb_vrrp_state{state="master",vrid="9"}`, 1)
	p.b = startOn(t, lab, lab.Clients[1], bin, haConfig(lab, 100))
	p.b.waitMetric(`dsrlb_vrrp_state{state="backup",vrid="9"}`, 1)
	vip := lab.VIPs[0].String()
	p.a.waitEvent("ha-became-master", map[string]any{"state": "master", "vips": vip, "vip_owner": "this balancer"})
	p.b.waitEvent("ha-became-backup", map[string]any{"state": "backup", "vips": vip, "vip_owner": "peer"})
	return p
}

// kill SIGKILLs a daemon: no priority 0 advertisement, no drain.
func kill(t testing.TB, d *runningDaemon) {
	t.Helper()
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGKILL))
	<-d.done
}

// probe makes one short request to the VIP from the client; true when a
// backend answered.
func probe(c *netlab.Host, vip string) bool {
	tr := &http.Transport{DialContext: c.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 50 * time.Millisecond}
	r, err := hc.Get("http://" + vip + "/")
	if err != nil {
		return false
	}
	defer r.Body.Close()
	_, err = io.Copy(io.Discard, r.Body)
	return err == nil && r.StatusCode == http.StatusOK && r.Header.Get("X-Backend") != ""
}

// TestIntegrationHATakeoverKeepsDownloads kills the master balancer while
// 50 downloads are under way: the backup takes over and, picking the same
// backends (same seed and services), carries the downloads to the end.
func TestIntegrationHATakeoverKeepsDownloads(t *testing.T) {
	netlab.RequirePrivileged(t)
	p := startHAPair(t, buildDaemon(t))
	const downloads = 50
	const size = 16 << 20 // far more than a socket buffer: the rest needs ACKs through the new master
	vip := p.lab.VIPs[0].String()

	started := make(chan struct{}, downloads)
	resume := make(chan struct{})
	errs := make([]error, downloads)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for i := range downloads {
		wg.Go(func() {
			tr := &http.Transport{DialContext: p.client.DialContext, DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/bytes?n=%d", vip, size), nil)
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				errs[i] = err
				started <- struct{}{}
				return
			}
			defer resp.Body.Close()
			buf := make([]byte, 64<<10)
			var off int64
			read := func(limit int64) error {
				for off < limit {
					n, err := resp.Body.Read(buf[:min(int64(len(buf)), limit-off)])
					if j := netlab.CheckPattern(buf[:n], off); j >= 0 {
						return fmt.Errorf("byte %d differs", off+int64(j))
					}
					off += int64(n)
					if err == io.EOF {
						break
					}
					if err != nil {
						return err
					}
				}
				return nil
			}
			// The first 256 KiB, then wait (the flow stays open, its
			// window fills) until the master is dead.
			errs[i] = read(256 << 10)
			started <- struct{}{}
			<-resume
			if errs[i] == nil {
				errs[i] = read(size)
			}
			if errs[i] == nil && off != size {
				errs[i] = fmt.Errorf("%d of %d bytes", off, size)
			}
		})
	}
	for range downloads {
		select {
		case <-started:
		case <-ctx.Done():
			t.Fatal("downloads did not start")
		}
	}
	kill(t, p.a)
	p.b.waitMetric(`dsrlb_vrrp_state{state="master",vrid="9"}`, 1)
	close(resume)
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	assert.LessOrEqual(t, len(failed), 1, "at least 49 of 50 downloads complete byte-exact: %v", errors.Join(failed...))
	// The new master carried them: it took over their flows (each one
	// a new entry in its flow table, placed by the same Maglev table).
	v, _ := p.b.metric(`dsrlb_service_flows_total{service="web"}`)
	assert.GreaterOrEqual(t, v, float64(downloads-1))
	page, err := p.b.get("/")
	require.NoError(t, err)
	assert.Contains(t, page, "VRRP MASTER")
	assert.Contains(t, page, "vrrp became master")
}

// BenchmarkHATakeover measures, over 20 failures of the master, the time
// from the failure until a new connection from a client reaches a backend
// through the new master (advertisements every 100 ms). The master fails by
// SIGKILL (the process dies: no priority 0 advertisement) or by link down
// (its interface goes down under a running daemon).
func BenchmarkHATakeover(b *testing.B) {
	for _, how := range []string{"sigkill", "linkdown"} {
		b.Run(how, func(b *testing.B) { benchTakeover(b, how) })
	}
}

func benchTakeover(b *testing.B, how string) {
	netlab.RequirePrivileged(b)
	bin := buildDaemon(b)
	lab := netlab.NewT(b, &netlab.Config{Servers: 3, Clients: 2})
	vip := lab.VIPs[0].String()
	link := func(state string) {
		out, err := lab.Balancer.Command(context.Background(), "ip", "link", "set", lab.Balancer.Link, state).CombinedOutput()
		require.NoError(b, err, "%s", out)
	}
	var lat []time.Duration
	for range b.N {
		for range 20 {
			a := startOn(b, lab, lab.Balancer, bin, haConfig(lab, 200))
			a.waitMetric(`dsrlb_vrrp_state{state="master",vrid="9"}`, 1)
			bk := startOn(b, lab, lab.Clients[1], bin, haConfig(lab, 100))
			bk.waitMetric(`dsrlb_vrrp_state{state="backup",vrid="9"}`, 1)
			waitFor(b, "traffic through the master", 20*time.Second, nil, func() bool { return probe(lab.Clients[0], vip) })
			start := time.Now()
			if how == "linkdown" {
				link("down")
			} else {
				_ = a.cmd.Process.Signal(syscall.SIGKILL)
				<-a.done
			}
			waitFor(b, "traffic through the new master", 20*time.Second, nil, func() bool { return probe(lab.Clients[0], vip) })
			lat = append(lat, time.Since(start))
			if how == "linkdown" {
				_ = a.cmd.Process.Signal(syscall.SIGKILL)
				<-a.done
				link("up")
			}
			_ = bk.cmd.Process.Signal(syscall.SIGKILL)
			<-bk.done
		}
	}
	slices.Sort(lat)
	q := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
	b.ReportMetric(float64(q(0.5).Milliseconds()), "p50-ms")
	b.ReportMetric(float64(q(0.99).Milliseconds()), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max-ms")
	b.Logf("takeover latencies over %d trials: p50 %v, p99 %v, max %v", len(lat), q(0.5), q(0.99), lat[len(lat)-1])
}

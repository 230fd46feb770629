package packaging

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/netlab"
)

const (
	pkgName  = "dsrlb"
	conffile = "/etc/dsrlb/dsrlb.yaml"
	unitPath = "/lib/systemd/system/dsrlb.service"
)

// requireTools skips (fails under CI) when a program the test needs is
// missing.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed (scripts/install-deps.sh installs it)", n)
			}
			t.Skipf("%s is not installed", n)
		}
	}
}

// run runs a command with no standard input and returns its combined
// output; it fails the test if the command fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := tryRun(name, args...)
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
	return out
}

func tryRun(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// buildPackage runs scripts/package.sh with version and returns the .deb.
func buildPackage(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "../scripts/package.sh", dir)
	cmd.Env = append(os.Environ(), "VERSION="+version)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "package.sh: %s", stderr.String())
	deb := strings.TrimSpace(string(out))
	arch := strings.TrimSpace(run(t, "dpkg", "--print-architecture"))
	assert.Equal(t, filepath.Join(dir, fmt.Sprintf("dsrlb_%s_%s.deb", version, arch)), deb, "dsrlb_<version>_<arch>.deb")
	return deb
}

// pkgStatus is dpkg's status of the package ("install ok installed",
// "deinstall ok config-files"), or "" when dpkg knows nothing of it.
func pkgStatus() string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", pkgName).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// TestIntegrationPackage builds the Debian package, installs it, checks the
// installed configuration and unit, runs the installed daemon as the unit
// runs it (its user, exactly its capabilities, no new privileges) in a
// namespace lab forwarding real TCP, upgrades it over an edited conffile,
// and removes and purges it.
func TestIntegrationPackage(t *testing.T) {
	netlab.RequirePrivileged(t)
	requireTools(t, "dpkg", "dpkg-deb", "systemd-analyze", "setpriv", "adduser")
	if st := pkgStatus(); st != "" && st != "unknown ok not-installed" {
		// Never touch an installation this test did not make.
		if os.Getenv("CI") == "true" {
			t.Fatalf("the %s package is on this machine already (%s): the test installs and removes its own", pkgName, st)
		}
		t.Skipf("the %s package is on this machine already (%s): not touching it", pkgName, st)
	}
	v1, v2 := "0.0.0+pkgtest1", "0.0.0+pkgtest2"
	deb1 := buildPackage(t, v1)
	deb2 := buildPackage(t, v2)
	t.Cleanup(func() {
		// Always leave the machine as it was, also on failure.
		if pkgStatus() != "" {
			if out, err := tryRun("dpkg", "--purge", pkgName); err != nil {
				t.Errorf("cleanup: dpkg --purge: %v: %s", err, out)
			}
		}
	})

	run(t, "dpkg", "-i", deb1)
	require.Equal(t, "install ok installed", pkgStatus())
	files := strings.Fields(run(t, "dpkg-query", "-L", pkgName))
	for _, f := range []string{"/usr/sbin/dsrlb", "/usr/sbin/realserver", conffile, unitPath, "/usr/share/doc/dsrlb/copyright"} {
		assert.Contains(t, files, f)
		assert.FileExists(t, f)
	}
	assert.Contains(t, run(t, "dpkg-query", "-W", "-f=${Conffiles}", pkgName), conffile, "the configuration is a conffile")
	u, err := user.Lookup("dsrlb")
	require.NoError(t, err, "postinst creates the system user")
	uid, _ := strconv.Atoi(u.Uid)
	assert.Less(t, uid, 1000, "a system user")

	t.Run("installed default configuration passes -check", func(t *testing.T) {
		out := run(t, "/usr/sbin/dsrlb", "-check", "-config", conffile)
		assert.Contains(t, out, conffile+": ok")
	})
	t.Run("version", func(t *testing.T) {
		for _, bin := range []string{"/usr/sbin/dsrlb", "/usr/sbin/realserver"} {
			assert.Contains(t, run(t, bin, "-version"), " "+v1+" (revision ", bin)
		}
	})
	t.Run("systemd-analyze verify", func(t *testing.T) {
		out := run(t, "systemd-analyze", "verify", unitPath)
		assert.Empty(t, out, "no warning about the unit")
	})

	t.Run("systemd-analyze security", func(t *testing.T) {
		// The exposure score of the hardening, 0 (locked down) to 10: at
		// most 3.0 keeps it from eroding unnoticed.
		out, err := tryRun("systemd-analyze", "security", "--offline=true", "--threshold=30", unitPath)
		t.Logf("%s", lastLine(out))
		assert.NoError(t, err, "exposure above 3.0:\n%s", out)
	})
	t.Run("runs as the unit runs it and forwards", func(t *testing.T) {
		runInstalledDaemon(t, parseUnit(t, unitPath), v1)
	})
	edited, err := os.ReadFile(conffile)
	require.NoError(t, err)
	require.Contains(t, string(edited), "backends:", "the conffile was edited for the lab")

	t.Run("upgrade keeps the edited conffile", func(t *testing.T) {
		run(t, "dpkg", "-i", deb2)
		assert.Equal(t, "install ok installed", pkgStatus())
		assert.Equal(t, v2, strings.TrimSpace(run(t, "dpkg-query", "-W", "-f=${Version}", pkgName)))
		got, err := os.ReadFile(conffile)
		require.NoError(t, err)
		assert.Equal(t, string(edited), string(got), "the operator's edit survives the upgrade")
		assert.Contains(t, run(t, "/usr/sbin/dsrlb", "-version"), " "+v2+" ")
	})

	t.Run("remove leaves only the configuration, purge removes it", func(t *testing.T) {
		files := strings.Fields(run(t, "dpkg-query", "-L", pkgName))
		run(t, "dpkg", "-r", pkgName)
		assert.Equal(t, "deinstall ok config-files", pkgStatus())
		for _, f := range files {
			// Stat, not Lstat: /lib is a link to /usr/lib on merged-/usr
			// systems, and directories shared with other packages stay.
			fi, err := os.Stat(f)
			switch {
			case f == conffile:
				assert.NoError(t, err, "the configuration stays after dpkg -r")
			case err == nil && !fi.IsDir():
				t.Errorf("%s is left after dpkg -r", f)
			}
		}
		_, err := user.Lookup("dsrlb")
		assert.NoError(t, err, "the user stays until purge")

		run(t, "dpkg", "-P", pkgName)
		assert.Empty(t, pkgStatus(), "dpkg knows nothing of the package after purge")
		assert.NoFileExists(t, conffile)
		assert.NoDirExists(t, "/etc/dsrlb")
		_, err = user.Lookup("dsrlb")
		assert.ErrorAs(t, err, new(user.UnknownUserError), "purge removes the system user")
	})
}

// runInstalledDaemon writes a lab configuration into the conffile, starts
// the installed daemon in the lab's balancer namespace with setpriv under
// the unit's user, capabilities (ambient and bounding) and
// NoNewPrivileges, with a readiness socket like systemd's, and checks that
// it forwards real TCP, reloads and drains on SIGTERM.
func runInstalledDaemon(t *testing.T, u unit, version string) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 2})
	const drain = 5 * time.Second
	cfg := fmt.Sprintf(`interface: %s
listen: 127.0.0.1:9180
dataplane: auto
drain_timeout: %s
health:
  interval: 200ms
  timeout: 150ms
  rise: 1
  fall: 2
arp:
  resolve_interval: 500ms
services:
  - name: web
    vip: %s
    protocol: tcp
    port: 80
    scheduler: mh
    checks:
      - type: tcp
      - type: dsr
    backends:
      - addr: %s
      - addr: %s
`, lab.Balancer.Link, drain, lab.VIPs[0], lab.Servers[0].IP, lab.Servers[1].IP)
	require.NoError(t, os.WriteFile(conffile, []byte(cfg), 0o640), "edit the conffile")

	// systemd's notification socket, writable by the daemon's user.
	sockDir, err := os.MkdirTemp("", "dsrlb-notify")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	require.NoError(t, os.Chmod(sockDir, 0o755))
	sock := filepath.Join(sockDir, "notify")
	notes, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	require.NoError(t, err)
	defer notes.Close()
	require.NoError(t, os.Chmod(sock, 0o777))
	noteCh := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := notes.Read(buf)
			if err != nil {
				close(noteCh)
				return
			}
			noteCh <- string(buf[:n])
		}
	}()
	var done chan error
	nextNote := func(want string) string {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case msg, ok := <-noteCh:
				require.True(t, ok, "the notification socket closed waiting for %s", want)
				if strings.Contains(msg, want) {
					return msg
				}
			case err := <-done:
				t.Fatalf("waiting for %s: the daemon exited: %v", want, err)
			case <-deadline:
				t.Fatalf("waiting for %s: not within 30s", want)
			}
		}
	}

	userName := u.one(t, "Service.User")
	caps := u.caps(t, "Service.AmbientCapabilities")
	bounding := u.caps(t, "Service.CapabilityBoundingSet")

	capArg := func(cs []string) string { return "-all,+" + strings.Join(cs, ",+") }
	require.Equal(t, "yes", u.one(t, "Service.NoNewPrivileges"))
	exec := strings.Fields(u.one(t, "Service.ExecStart"))
	args := append([]string{"--reuid=" + userName, "--regid=" + userName, "--init-groups",
		"--inh-caps=" + capArg(caps), "--ambient-caps=" + capArg(caps), "--bounding-set=" + capArg(bounding),
		"--no-new-privs", "--"}, exec...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := lab.Balancer.Command(ctx, "setpriv", args...)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	require.NoError(t, cmd.Start())
	done = make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if t.Failed() {
			t.Logf("daemon output:\n%s", logs.String())
		}
	}()

	nextNote("READY=1")
	status := procStatus(t, cmd.Process.Pid)
	u2, err := user.Lookup(userName)
	require.NoError(t, err)
	assert.Equal(t, u2.Uid, strings.Fields(status["Uid"])[0], "runs as the unit's user")
	assert.Equal(t, "1", status["NoNewPrivs"])
	assert.Equal(t, status["CapBnd"], status["CapEff"], "effective = bounding = the unit's set")
	assert.Equal(t, status["CapAmb"], status["CapEff"])
	assert.Equal(t, capMask(t, caps), status["CapEff"])

	client := lab.Balancer.HTTPClient()
	defer client.CloseIdleConnections()
	client.Timeout = 2 * time.Second
	metric := func(series string) (float64, bool) {
		r, err := client.Get("http://127.0.0.1:9180/metrics")
		if err != nil {
			return 0, false
		}
		defer r.Body.Close()
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
				f, err := strconv.ParseFloat(v, 64)
				return f, err == nil
			}
		}
		return 0, false
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			select {
			case err := <-done:
				t.Fatalf("waiting for %s: the daemon exited: %v", what, err)
			case <-time.After(100 * time.Millisecond):
			}
			require.True(t, time.Now().Before(deadline), "waiting for %s", what)
		}
	}
	for _, s := range lab.Servers {
		waitFor(s.Name+" healthy", func() bool {
			v, ok := metric(`dsrlb_backend_healthy{backend="` + s.IP.String() + `",service="web"}`)
			return ok && v == 1
		})
	}
	waitFor("the started event in the unit's text log format", func() bool {
		return strings.Contains(logs.String(), "msg=forwarding event=started interface="+lab.Balancer.Link)
	})
	// dataplane: auto. The unit's capabilities load and attach the XDP
	// program (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN), but on a veth the
	// daemon also attaches a pass-through program to the peer in the
	// peer's namespace, which needs CAP_SYS_ADMIN: in this lab the daemon
	// falls back to packet sockets, and says so.
	for _, plane := range []string{"xdp", "packet"} {
		if v, ok := metric(`dsrlb_dataplane{dataplane="` + plane + `"}`); ok && v == 1 {
			t.Logf("data plane: %s", plane)
		}
	}

	// The version the package build passed in, on the metrics and the
	// status page.
	page := func(path string) string {
		r, err := client.Get("http://127.0.0.1:9180" + path)
		require.NoError(t, err)
		defer r.Body.Close()
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		return string(b)
	}
	assert.Regexp(t, `(?m)^dsrlb_build_info\{[^}]*version="`+regexp.QuoteMeta(version)+`"[^}]*\} 1$`, page("/metrics"))
	assert.Contains(t, html.UnescapeString(page("/")), "version <b>"+version+"</b>")

	seen := map[string]int{}
	for range 20 {
		got, err := fetch(lab, netip.AddrPortFrom(lab.VIPs[0], 80))
		require.NoError(t, err)
		seen[got]++
	}
	assert.Len(t, seen, 2, "both backends serve through the installed daemon: %v", seen)

	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	nextNote("RELOADING=1")
	nextNote("READY=1")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	msg := nextNote("STOPPING=1")
	assert.Contains(t, strings.Split(msg, "\n"), fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d", (drain+10*time.Second).Microseconds()),
		"the stop timeout follows drain_timeout")
	select {
	case err := <-done:
		require.NoError(t, err, "a clean stop after the drain")
	case <-time.After(drain + 20*time.Second):
		t.Fatal("the daemon did not stop after its drain")
	}
	assert.Contains(t, logs.String(), "event=drained")
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// fetch GETs / from addr on a new connection from the lab's first client
// and returns the answering server's name.
func fetch(lab *netlab.Lab, addr netip.AddrPort) (string, error) {
	tr := &http.Transport{DialContext: lab.Clients[0].DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	r, err := hc.Get("http://" + addr.String() + "/")
	if err != nil {
		return "", err
	}
	defer r.Body.Close()
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		return "", err
	}
	if r.StatusCode != http.StatusOK {
		return "", errors.New(r.Status)
	}
	return r.Header.Get("X-Backend"), nil
}

// procStatus returns the fields of /proc/PID/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// capNumbers are the capabilities a unit may name here (linux/capability.h).
var capNumbers = map[string]uint{"net_bind_service": 10, "net_admin": 12, "net_raw": 13, "sys_admin": 21, "sys_resource": 24, "perfmon": 38, "bpf": 39}

// capMask is /proc's hex form of a capability set.
func capMask(t *testing.T, caps []string) string {
	var m uint64
	for _, c := range caps {
		n, ok := capNumbers[c]
		require.True(t, ok, "unknown capability %s", c)
		m |= 1 << n
	}
	return fmt.Sprintf("%016x", m)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

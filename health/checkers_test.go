package health

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func targetOf(t testing.TB, addr string) Target {
	t.Helper()
	ap := netip.MustParseAddrPort(addr)
	return Target{Addr: ap.Addr(), Port: ap.Port()}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) Target {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tg := targetOf(t, l.Addr().String())
	require.NoError(t, l.Close())
	return tg
}

// acceptAndClose accepts and closes connections until l is closed.
func acceptAndClose(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

func TestTCPChecker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go acceptAndClose(l)
	tests := []struct {
		name    string
		c       *TCPChecker
		target  Target
		wantErr error
	}{
		{"listening", &TCPChecker{}, targetOf(t, l.Addr().String()), nil},
		{"listening graceful", &TCPChecker{Graceful: true}, targetOf(t, l.Addr().String()), nil},
		{"refused", &TCPChecker{}, closedPort(t), errAny},
		{"no port", &TCPChecker{}, Target{Addr: netip.MustParseAddr("127.0.0.1")}, ErrTargetIncomplete},
		{"no addr", &TCPChecker{}, Target{Port: 80}, ErrTargetIncomplete},
	}
	if l6, err := net.Listen("tcp", "[::1]:0"); err == nil {
		defer l6.Close()
		go acceptAndClose(l6)
		tests = append(tests, struct {
			name    string
			c       *TCPChecker
			target  Target
			wantErr error
		}{"listening IPv6", &TCPChecker{}, targetOf(t, l6.Addr().String()), nil})
	} else {
		t.Logf("no IPv6 loopback here (%v): IPv6 case not run", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, tc.c.Check(ctxT(t), tc.target), tc.wantErr)
		})
	}
}

var errAny = errors.New("any error")

func checkResult(t *testing.T, err, want error) {
	t.Helper()
	switch want {
	case nil:
		assert.NoError(t, err)
	case errAny:
		assert.Error(t, err)
	default:
		assert.ErrorIs(t, err, want)
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "backend.example"},
		DNSNames:     []string{"backend.example"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func healthHandler(sni *string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && sni != nil {
			*sni = r.TLS.ServerName
		}
		w.Header().Set("X-Host", r.Host)
		switch r.URL.Path {
		case "/ok":
			if r.Host != "svc.example" && r.Host != "backend.example" {
				http.Error(w, "wrong host "+r.Host, http.StatusMisdirectedRequest)
				return
			}
			_, _ = io.WriteString(w, `{"status":"serving","version":42}`)
		case "/down":
			http.Error(w, "draining", http.StatusServiceUnavailable)
		case "/teapot":
			w.WriteHeader(http.StatusTeapot)
		case "/head":
			if r.Method != http.MethodHead {
				http.Error(w, "want HEAD", http.StatusMethodNotAllowed)
			}
		default:
			http.NotFound(w, r)
		}
	})
}

func TestHTTPChecker(t *testing.T) {
	srv := httptest.NewServer(healthHandler(nil))
	defer srv.Close()
	tg := targetOf(t, srv.Listener.Addr().String())
	tests := []struct {
		name    string
		c       *HTTPChecker
		target  Target
		wantErr error
	}{
		{"ok with host", &HTTPChecker{Path: "/ok", Host: "svc.example"}, tg, nil},
		{"wrong host", &HTTPChecker{Path: "/ok", Host: "other.example"}, tg, ErrUnexpectedResponse},
		{"503", &HTTPChecker{Path: "/down", Host: "svc.example"}, tg, ErrUnexpectedResponse},
		{"404 default range", &HTTPChecker{Path: "/nope"}, tg, ErrUnexpectedResponse},
		{"418 accepted by range", &HTTPChecker{Path: "/teapot", StatusMin: 418, StatusMax: 418}, tg, nil},
		{"200 rejected by range", &HTTPChecker{Path: "/ok", Host: "svc.example", StatusMin: 204, StatusMax: 204}, tg, ErrUnexpectedResponse},
		{"body contains", &HTTPChecker{Path: "/ok", Host: "svc.example", BodyContains: `"serving"`}, tg, nil},
		{"body lacks", &HTTPChecker{Path: "/ok", Host: "svc.example", BodyContains: "stopped"}, tg, ErrUnexpectedResponse},
		{"body regexp", &HTTPChecker{Path: "/ok", Host: "svc.example", BodyMatch: regexp.MustCompile(`"version":\d+`)}, tg, nil},
		{"body regexp fails", &HTTPChecker{Path: "/ok", Host: "svc.example", BodyMatch: regexp.MustCompile(`"version":"`)}, tg, ErrUnexpectedResponse},
		{"body beyond MaxBody", &HTTPChecker{Path: "/ok", Host: "svc.example", BodyContains: "42", MaxBody: 10}, tg, ErrUnexpectedResponse},
		{"method", &HTTPChecker{Path: "/head", Method: http.MethodHead}, tg, nil},
		{"wrong method", &HTTPChecker{Path: "/head"}, tg, ErrUnexpectedResponse},
		{"refused", &HTTPChecker{Path: "/ok"}, closedPort(t), errAny},
		{"plain http to https-only", &HTTPChecker{HTTPS: true, InsecureSkipVerify: true, Path: "/ok"}, tg, errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, tc.c.Check(ctxT(t), tc.target), tc.wantErr)
		})
	}
}

func TestHTTPSChecker(t *testing.T) {
	cert, pool := selfSigned(t)
	var sni string
	srv := httptest.NewUnstartedServer(healthHandler(&sni))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // rejected handshakes are expected
	srv.StartTLS()
	defer srv.Close()
	tg := targetOf(t, srv.Listener.Addr().String())
	tests := []struct {
		name    string
		c       *HTTPChecker
		wantErr error
		wantSNI string
	}{
		{"verified via Host", &HTTPChecker{HTTPS: true, Path: "/ok", Host: "backend.example", RootCAs: pool}, nil, "backend.example"},
		{"verified via ServerName", &HTTPChecker{HTTPS: true, Path: "/ok", Host: "svc.example", ServerName: "backend.example", RootCAs: pool}, nil, "backend.example"},
		{"unknown CA", &HTTPChecker{HTTPS: true, Path: "/ok", Host: "backend.example"}, errAny, ""},
		{"name mismatch", &HTTPChecker{HTTPS: true, Path: "/ok", Host: "svc.example", RootCAs: pool}, errAny, ""},
		{"verification off", &HTTPChecker{HTTPS: true, Path: "/ok", Host: "svc.example", InsecureSkipVerify: true}, nil, "svc.example"},
		{"status still checked", &HTTPChecker{HTTPS: true, Path: "/down", InsecureSkipVerify: true}, ErrUnexpectedResponse, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sni = ""
			err := tc.c.Check(ctxT(t), tg)
			checkResult(t, err, tc.wantErr)
			if tc.wantSNI != "" {
				assert.Equal(t, tc.wantSNI, sni)
			}
		})
	}
}

// udpServer answers each datagram with reply(datagram), or not at all
// when reply returns nil.
func udpServer(t *testing.T, reply func([]byte) []byte) Target {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if r := reply(buf[:n]); r != nil {
				_, _ = pc.WriteTo(r, from)
			}
		}
	}()
	return targetOf(t, pc.LocalAddr().String())
}

func TestUDPChecker(t *testing.T) {
	echo := udpServer(t, func(b []byte) []byte { return append([]byte("echo:"), b...) })
	silent := udpServer(t, func([]byte) []byte { return nil })
	closed := func() Target {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		tg := targetOf(t, pc.LocalAddr().String())
		pc.Close()
		return tg
	}()
	tests := []struct {
		name    string
		c       *UDPChecker
		target  Target
		wantErr error
	}{
		{"any reply", &UDPChecker{Payload: []byte("ping")}, echo, nil},
		{"matching reply", &UDPChecker{Payload: []byte("ping"), Expect: []byte("echo:ping")}, echo, nil},
		{"mismatching reply", &UDPChecker{Payload: []byte("ping"), Expect: []byte("pong"), Timeout: 100 * time.Millisecond}, echo, ErrUnexpectedResponse},
		{"silence", &UDPChecker{Payload: []byte("ping"), Timeout: 100 * time.Millisecond}, silent, os.ErrDeadlineExceeded},
		{"port unreachable", &UDPChecker{Payload: []byte("ping")}, closed, errAny},
		{"no port", &UDPChecker{}, Target{Addr: echo.Addr}, ErrTargetIncomplete},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// No deadline on ctx: the checker's own Timeout applies.
			checkResult(t, tc.c.Check(context.Background(), tc.target), tc.wantErr)
		})
	}
}

// dnsResponder answers A queries for name with addr, NXDOMAIN for other
// names; mangle may alter the response before it is sent.
func dnsResponder(t *testing.T, name string, addr netip.Addr, mangle func(*dnsmessage.Message)) Target {
	return udpServer(t, func(b []byte) []byte {
		var q dnsmessage.Message
		if err := q.Unpack(b); err != nil || len(q.Questions) != 1 {
			return nil
		}
		r := dnsmessage.Message{
			Header:    dnsmessage.Header{ID: q.ID, Response: true, Authoritative: true},
			Questions: q.Questions,
		}
		qq := q.Questions[0]
		switch {
		case qq.Name.String() == name && qq.Type == dnsmessage.TypeA:
			r.Answers = []dnsmessage.Resource{{
				Header: dnsmessage.ResourceHeader{Name: qq.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
				Body:   &dnsmessage.AResource{A: addr.As4()},
			}}
		case qq.Name.String() == "." && qq.Type == dnsmessage.TypeNS:
		default:
			r.RCode = dnsmessage.RCodeNameError
		}
		if mangle != nil {
			mangle(&r)
		}
		out, err := r.Pack()
		if err != nil {
			return nil
		}
		return out
	})
}

func TestDNSChecker(t *testing.T) {
	want := netip.MustParseAddr("192.0.2.100")
	good := dnsResponder(t, "svc.example.", want, nil)
	wrongID := dnsResponder(t, "svc.example.", want, func(m *dnsmessage.Message) { m.ID++ })
	servfail := dnsResponder(t, "svc.example.", want, func(m *dnsmessage.Message) { m.RCode = dnsmessage.RCodeServerFailure })
	tests := []struct {
		name    string
		c       *DNSChecker
		target  Target
		wantErr error
	}{
		{"root NS default", &DNSChecker{}, good, nil},
		{"name resolves", &DNSChecker{Name: "svc.example"}, good, nil},
		{"expected answer", &DNSChecker{Name: "svc.example.", Expect: want}, good, nil},
		{"other answer", &DNSChecker{Name: "svc.example.", Expect: netip.MustParseAddr("192.0.2.1")}, good, ErrUnexpectedResponse},
		{"nxdomain", &DNSChecker{Name: "nope.example"}, good, ErrUnexpectedResponse},
		{"servfail", &DNSChecker{Name: "svc.example"}, servfail, ErrUnexpectedResponse},
		{"response with wrong ID ignored", &DNSChecker{Name: "svc.example", Timeout: 100 * time.Millisecond}, wrongID, os.ErrDeadlineExceeded},
		{"response with wrong ID is no match", &DNSChecker{Name: "svc.example", Timeout: 100 * time.Millisecond}, wrongID, ErrUnexpectedResponse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, tc.c.Check(context.Background(), tc.target), tc.wantErr)
		})
	}
}

func TestICMPChecker(t *testing.T) {
	c := &ICMPChecker{Timeout: time.Second}
	err := c.Check(ctxT(t), Target{Addr: netip.MustParseAddr("127.0.0.1")})
	if err != nil && errors.Is(err, os.ErrPermission) {
		t.Skip("neither ICMP datagram nor raw sockets are allowed: ", err)
	}
	require.NoError(t, err)
	err = c.Check(ctxT(t), Target{Addr: netip.MustParseAddr("::1")})
	if err != nil && errors.Is(err, os.ErrPermission) {
		t.Skip("no ICMPv6 socket: ", err)
	}
	require.NoError(t, err)
}

func TestCheckerContextCancel(t *testing.T) {
	silent := udpServer(t, func([]byte) []byte { return nil })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() { done <- (&UDPChecker{Timeout: time.Minute}).Check(ctx, silent) }()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second): // a deadline, far below the checker's own minute
		t.Fatal("the check did not end when its context was cancelled")
	}
}

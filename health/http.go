package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
)

// HTTPChecker counts a target healthy when an HTTP (or HTTPS) request to
// Target.Addr:Target.Port answers with an expected status and, optionally,
// body. Each check uses a fresh connection (no keep-alive), so every check
// also proves that the server still accepts connections.
//
// Configure the fields before the first Check and do not change them
// afterwards: the transport is built once, on first use.
type HTTPChecker struct {
	// HTTPS uses TLS. False means plain HTTP.
	HTTPS bool
	// Method is the request method. Empty means GET.
	Method string
	// Path is the request path and query. Empty means "/".
	Path string
	// Host is the Host header. Empty means the target's address:port.
	Host string
	// ServerName is the TLS SNI and the name the certificate is verified
	// against. Empty means Host (without a port); if that is empty too, no
	// SNI is sent and verification needs InsecureSkipVerify or an IP SAN.
	ServerName string
	// InsecureSkipVerify turns certificate verification off, for backends
	// with self-signed certificates. False means verify.
	InsecureSkipVerify bool
	// RootCAs verifies the server's certificate. Nil means the system pool.
	RootCAs *x509.CertPool
	// StatusMin and StatusMax bound the accepted status codes (inclusive).
	// Zero StatusMin means 200; zero StatusMax means 399 (redirects count as
	// healthy: the server is answering).
	StatusMin, StatusMax int
	// BodyContains, when not empty, must occur in the body.
	BodyContains string
	// BodyMatch, when not nil, must match the body.
	BodyMatch *regexp.Regexp
	// MaxBody bounds how much body is read for matching. Zero means 64 KiB.
	MaxBody int64

	once sync.Once
	tr   *http.Transport
}

func (c *HTTPChecker) transport() *http.Transport {
	c.once.Do(func() {
		sn := c.ServerName
		if sn == "" && c.Host != "" {
			sn = c.Host
			if h, _, err := net.SplitHostPort(sn); err == nil {
				sn = h
			}
		}
		c.tr = &http.Transport{
			DisableKeepAlives:  true,
			DisableCompression: true,
			Proxy:              nil, // health checks never go through a proxy
			TLSClientConfig: &tls.Config{
				ServerName:         sn,
				InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // documented opt-in
				RootCAs:            c.RootCAs,
			},
		}
	})
	return c.tr
}

// Check implements Checker.
func (c *HTTPChecker) Check(ctx context.Context, t Target) error {
	if !t.Addr.IsValid() {
		return fmt.Errorf("health: http check of %v: %w", t, ErrTargetIncomplete)
	}
	scheme, port := "http", uint16(80)
	if c.HTTPS {
		scheme, port = "https", 443
	}
	path := c.Path
	if path == "" {
		path = "/"
	}
	u := &url.URL{Scheme: scheme, Host: t.AddrPort(port).String()}
	full := u.String() + path
	if !strings.HasPrefix(path, "/") {
		full = u.String() + "/" + path
	}
	method := c.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, full, nil)
	if err != nil {
		return fmt.Errorf("health: http check of %v: %w", t, err)
	}
	if c.Host != "" {
		req.Host = c.Host
	}
	resp, err := c.transport().RoundTrip(req)
	if err != nil {
		return fmt.Errorf("health: http check of %v: %w", t, err)
	}
	defer resp.Body.Close()
	lo, hi := c.StatusMin, c.StatusMax
	if lo == 0 {
		lo = 200
	}
	if hi == 0 {
		hi = 399
	}
	if resp.StatusCode < lo || resp.StatusCode > hi {
		return fmt.Errorf("health: http check of %v: status %d not in %d-%d: %w", t, resp.StatusCode, lo, hi, ErrUnexpectedResponse)
	}
	if c.BodyContains == "" && c.BodyMatch == nil {
		return nil
	}
	max := c.MaxBody
	if max <= 0 {
		max = 64 << 10
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max))
	if err != nil {
		return fmt.Errorf("health: http check of %v: reading body: %w", t, err)
	}
	if c.BodyContains != "" && !bytes.Contains(body, []byte(c.BodyContains)) {
		return fmt.Errorf("health: http check of %v: body lacks %q: %w", t, c.BodyContains, ErrUnexpectedResponse)
	}
	if c.BodyMatch != nil && !c.BodyMatch.Match(body) {
		return fmt.Errorf("health: http check of %v: body does not match %q: %w", t, c.BodyMatch, ErrUnexpectedResponse)
	}
	return nil
}

// CheckKey implements Keyer.
func (c *HTTPChecker) CheckKey() string {
	re := ""
	if c.BodyMatch != nil {
		re = c.BodyMatch.String()
	}
	return fmt.Sprintf("http https=%t method=%q path=%q host=%q sni=%q insecure=%t roots=%p status=%d-%d contains=%q match=%q max=%d",
		c.HTTPS, c.Method, c.Path, c.Host, c.ServerName, c.InsecureSkipVerify, c.RootCAs, c.StatusMin, c.StatusMax, c.BodyContains, re, c.MaxBody)
}

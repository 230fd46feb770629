package netlab

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPattern(t *testing.T) {
	buf := make([]byte, 1<<20)
	FillPattern(buf, 12345)
	require.Equal(t, -1, CheckPattern(buf, 12345))
	for j := range 1000 {
		require.Equal(t, PatternByte(12345+int64(j)), buf[j])
	}
	// A chunk delivered at the wrong offset must not verify: the pattern
	// must not repeat every 256 bytes (a common TCP resegmentation stride).
	for _, shift := range []int64{1, 256, 1460, 4096, 65536} {
		assert.NotEqual(t, -1, CheckPattern(buf[:4096], 12345+shift), "shift %d", shift)
	}
	buf[777] ^= 1
	assert.Equal(t, 777, CheckPattern(buf, 12345))
}

func TestPatternReader(t *testing.T) {
	for _, n := range []int64{0, 1, 255, 65536, 100003} {
		b, err := io.ReadAll(&patternReader{n: n})
		require.NoError(t, err)
		require.Len(t, b, int(n))
		require.Equal(t, -1, CheckPattern(b, 0))
	}
}

func TestWithDefaults(t *testing.T) {
	v4 := netip.MustParseAddr("198.51.100.7")
	tests := []struct {
		name    string
		cfg     *Config
		want    func(t *testing.T, c Config)
		wantErr string
	}{
		{name: "nil", cfg: nil, want: func(t *testing.T, c Config) {
			assert.Equal(t, 3, c.Servers)
			assert.Equal(t, 1, c.Clients)
			assert.Equal(t, uint16(80), c.HTTPPort)
			assert.Equal(t, uint16(9000), c.UDPPort)
			assert.Equal(t, []netip.Addr{DefaultVIP4}, c.VIPs)
			assert.NotNil(t, c.Logger)
		}},
		{name: "ipv6 default VIPs", cfg: &Config{IPv6: true}, want: func(t *testing.T, c Config) {
			assert.Equal(t, []netip.Addr{DefaultVIP4, DefaultVIP6}, c.VIPs)
		}},
		{name: "explicit VIPs unmapped", cfg: &Config{VIPs: []netip.Addr{netip.AddrFrom16(v4.As16())}}, want: func(t *testing.T, c Config) {
			assert.Equal(t, []netip.Addr{v4}, c.VIPs)
		}},
		{name: "too many servers", cfg: &Config{Servers: MaxServers + 1}, wantErr: "Servers"},
		{name: "too many clients", cfg: &Config{Clients: MaxClients + 1}, wantErr: "Clients"},
		{name: "negative servers", cfg: &Config{Servers: -1}, wantErr: "Servers"},
		{name: "v6 VIP without IPv6", cfg: &Config{VIPs: []netip.Addr{DefaultVIP6}}, wantErr: "needs Config.IPv6"},
		{name: "VIP on a host address", cfg: &Config{VIPs: []netip.Addr{netip.MustParseAddr("192.0.2.21")}}, wantErr: "collides"},
		{name: "invalid VIP", cfg: &Config{VIPs: []netip.Addr{{}}}, wantErr: "invalid VIP"},
		{name: "loopback VIP", cfg: &Config{VIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}, wantErr: "invalid VIP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := withDefaults(tt.cfg)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.want(t, c)
		})
	}
}

func TestWithDefaultsDoesNotAliasVIPs(t *testing.T) {
	vips := []netip.Addr{netip.MustParseAddr("::ffff:192.0.2.200")}
	_, err := withDefaults(&Config{VIPs: vips})
	require.NoError(t, err)
	assert.True(t, vips[0].Is4In6(), "caller's slice must stay untouched")
}

func TestServerHandler(t *testing.T) {
	srv := httptest.NewServer(serverHandler("s7"))
	defer srv.Close()
	c := srv.Client()

	tests := []struct {
		name, method, path string
		body               []byte
		wantStatus         int
		check              func(t *testing.T, body []byte)
	}{
		{name: "root", method: "GET", path: "/", wantStatus: 200, check: func(t *testing.T, b []byte) {
			assert.Equal(t, "s7", string(b))
		}},
		{name: "bytes", method: "GET", path: "/bytes?n=70000", wantStatus: 200, check: func(t *testing.T, b []byte) {
			require.Len(t, b, 70000)
			assert.Equal(t, -1, CheckPattern(b, 0))
		}},
		{name: "bytes zero", method: "GET", path: "/bytes?n=0", wantStatus: 200, check: func(t *testing.T, b []byte) {
			assert.Empty(t, b)
		}},
		{name: "bytes negative", method: "GET", path: "/bytes?n=-1", wantStatus: 400},
		{name: "bytes garbage", method: "GET", path: "/bytes?n=x", wantStatus: 400},
		{name: "bytes huge", method: "GET", path: "/bytes?n=" + strconv.Itoa(maxBytesN+1), wantStatus: 400},
		{name: "upload", method: "POST", path: "/upload", body: []byte("hello"), wantStatus: 200, check: func(t *testing.T, b []byte) {
			var r UploadResult
			require.NoError(t, json.Unmarshal(b, &r))
			sum := sha256.Sum256([]byte("hello"))
			assert.Equal(t, UploadResult{N: 5, SHA256: hex.EncodeToString(sum[:])}, r)
		}},
		{name: "unknown path", method: "GET", path: "/nope", wantStatus: 404},
		{name: "upload needs POST", method: "GET", path: "/upload", wantStatus: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, bytes.NewReader(tt.body))
			require.NoError(t, err)
			resp, err := c.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tt.wantStatus, resp.StatusCode, string(b))
			assert.Equal(t, "s7", resp.Header.Get("X-Backend"), "every reply names the backend")
			if tt.check != nil {
				tt.check(t, b)
			}
		})
	}
}

func TestParseMarker(t *testing.T) {
	tests := []struct {
		in   string
		want owner
		ok   bool
	}{
		{"123 456\n", owner{123, 456}, true},
		{"1 0", owner{1, 0}, true},
		{"", owner{}, false},
		{"123\n", owner{}, false},
		{"0 5\n", owner{}, false},
		{"-3 5\n", owner{}, false},
		{"12 x\n", owner{}, false},
		{"12 5 7\n", owner{}, false},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := parseMarker([]byte(tt.in))
			if !tt.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, got, must(parseMarker(formatMarker(got))))
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

const statLine = "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"

func TestParseStatStart(t *testing.T) {
	got, err := parseStatStart([]byte(statLine))
	require.NoError(t, err)
	assert.Equal(t, uint64(987654), got)
	for _, bad := range []string{"", "4242 (x", "4242 (x) S 1 2 3", strings.Replace(statLine, "987654", "-1", 1)} {
		_, err := parseStatStart([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func TestSyncBufferBounded(t *testing.T) {
	var b syncBuffer
	chunk := bytes.Repeat([]byte("x"), 4096)
	for range 2 * maxLogBytes / len(chunk) {
		n, err := b.Write(chunk)
		require.NoError(t, err)
		require.Equal(t, len(chunk), n)
	}
	_, _ = b.Write([]byte("END"))
	s := b.String()
	assert.Len(t, s, maxLogBytes)
	assert.True(t, strings.HasSuffix(s, "END"), "keeps the newest output")
}

func FuzzParseMarker(f *testing.F) {
	f.Add([]byte("123 456\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := parseMarker(b)
		if err != nil {
			return
		}
		again, err := parseMarker(formatMarker(o))
		if err != nil || again != o {
			t.Fatalf("round trip of %+v: %+v, %v", o, again, err)
		}
	})
}

func FuzzParseStatStart(f *testing.F) {
	f.Add([]byte(statLine))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseStatStart(b)
	})
}

func BenchmarkFillPattern(b *testing.B) {
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		FillPattern(buf, int64(i)*int64(len(buf)))
	}
}

func TestFillPatternAllocs(t *testing.T) {
	buf := make([]byte, 4096)
	assert.Zero(t, testing.AllocsPerRun(100, func() { FillPattern(buf, 99) }))
}

func TestPrivilegeVerdict(t *testing.T) {
	tests := []struct {
		ok, ci bool
		goos   string
		want   verdict
	}{
		{ok: true, ci: false, goos: "linux", want: verdictRun},
		{ok: true, ci: true, goos: "linux", want: verdictRun},
		{ok: false, ci: false, goos: "linux", want: verdictSkip},
		{ok: false, ci: true, goos: "linux", want: verdictFail},
		{ok: false, ci: true, goos: "darwin", want: verdictSkip},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, privilegeVerdict(tt.ok, tt.ci, tt.goos), "%+v", tt)
	}
}

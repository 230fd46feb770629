package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --os windows prints the PowerShell the library pins in its golden files;
// L3 modes are refused with a usage error.
func TestWindowsOutput(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"prepare", "--os", "windows", "--vip", "192.0.2.100", "--vip", "2001:db8::100"}, &out, &errb)
	require.Equal(t, exitOK, code, errb.String())
	want, err := os.ReadFile(filepath.Join("..", "..", "dsr", "realserver", "testdata", "windows-dual.golden"))
	require.NoError(t, err)
	assert.Equal(t, string(want), out.String())

	out.Reset()
	code = run(context.Background(), []string{"check", "--os", "windows", "--vip", "192.0.2.100", "--vip", "2001:db8::100"}, &out, &errb)
	require.Equal(t, exitOK, code)
	want, err = os.ReadFile(filepath.Join("..", "..", "dsr", "realserver", "testdata", "windows-check.golden"))
	require.NoError(t, err)
	assert.Equal(t, string(want), out.String())

	for _, mode := range []string{"ipip", "gue"} {
		out.Reset()
		errb.Reset()
		code = run(context.Background(), []string{"prepare", "--os", "windows", "--mode", mode, "--balancer", "203.0.113.2", "--vip", "192.0.2.100"}, &out, &errb)
		assert.Equal(t, exitUsage, code)
		assert.Contains(t, errb.String(), "L2 DSR only")
		assert.Empty(t, out.String())
	}
}

func TestL3UsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad mode", []string{"check", "--vip", "192.0.2.100", "--mode", "vxlan"}, "bad mode"},
		{"bad balancer", []string{"check", "--vip", "192.0.2.100", "--mode", "ipip", "--balancer", "x"}, "invalid value"},
		{"bad gue port", []string{"check", "--vip", "192.0.2.100", "--mode", "gue", "--gue-port", "0"}, "bad port"},
		{"bad decap", []string{"prepare", "--vip", "192.0.2.100", "--decap", "bpf"}, "bad decap"},
		{"bad os", []string{"prepare", "--vip", "192.0.2.100", "--os", "plan9"}, "bad --os"},
		{"windows undo", []string{"undo", "--os", "windows"}, "by hand"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args, &out, &errb)
			assert.Equal(t, exitUsage, code, "stderr: %s", errb.String())
			assert.Contains(t, errb.String(), tc.want)
		})
	}
}

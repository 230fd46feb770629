package sysctl_test

import (
	"io/fs"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/dsrlb/dsrlb/internal/netlab"
	"github.com/dsrlb/dsrlb/internal/sysctl"
)

func TestMain(m *testing.M) {
	netlab.RunChildIfRequested()
	os.Exit(m.Run())
}

// An interface whose name has dots is one directory of /proc/sys: a value
// written through either notation reads back through the other, in the
// namespace of the calling thread only.
func TestIntegrationDottedInterface(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 1, NoServerProcesses: true})
	h := lab.Servers[0]
	const name = "br0.100"
	require.NoError(t, h.Do(func() error {
		return netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}})
	}))
	dotted := sysctl.MustParse("net.ipv4.conf.br0/100.arp_ignore")
	slashed := sysctl.MustParse("net/ipv4/conf/br0.100/arp_ignore")
	built, err := sysctl.Conf(sysctl.IPv4, name, "arp_ignore")
	require.NoError(t, err)
	require.Equal(t, built, dotted)
	require.Equal(t, built, slashed)

	require.NoError(t, h.Do(func() error {
		before, err := sysctl.ReadInt(dotted)
		if err != nil {
			return err
		}
		want := 1
		if before == 1 {
			want = 2
		}
		if err := sysctl.WriteInt(slashed, want); err != nil {
			return err
		}
		got, err := sysctl.ReadInt(built)
		if err != nil {
			return err
		}
		assert.Equal(t, want, got)
		// The dotted name split at its dot names nothing.
		_, err = sysctl.Read(sysctl.MustParse("net.ipv4.conf.br0.100.arp_ignore"))
		assert.ErrorIs(t, err, fs.ErrNotExist)
		err = sysctl.Write(sysctl.MustParse("net.ipv4.conf.br0.100.arp_ignore"), "1")
		assert.ErrorIs(t, err, fs.ErrNotExist)
		return nil
	}))
	// The caller's own namespace has no such interface.
	_, err = sysctl.Read(built)
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

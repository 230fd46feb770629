package sysctl

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Read and Write go to the directory a key names, a dotted interface name
// being one directory, against a fake /proc/sys.
func TestReadWriteFakeRoot(t *testing.T) {
	dir := t.TempDir()
	old := root
	root = dir
	t.Cleanup(func() { root = old })
	conf := filepath.Join(dir, "net", "ipv4", "conf", "eth0.100")
	require.NoError(t, os.MkdirAll(conf, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(conf, "rp_filter"), []byte("1\n"), 0o644))

	k, err := Conf(IPv4, "eth0.100", "rp_filter")
	require.NoError(t, err)
	v, err := ReadInt(k)
	require.NoError(t, err)
	assert.Equal(t, 1, v)
	require.NoError(t, WriteInt(k, 2))
	got, err := Read(MustParse("net.ipv4.conf.eth0/100.rp_filter"))
	require.NoError(t, err)
	assert.Equal(t, "2", got)

	// Absent keys are not created.
	missing := MustParse("net.ipv4.conf.eth0.100.rp_filter") // eth0/100/rp_filter
	_, err = Read(missing)
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.ErrorIs(t, Write(missing, "1"), fs.ErrNotExist)
	assert.NoDirExists(t, filepath.Join(conf, "..", "eth0"))

	_, err = Read(Key{})
	require.ErrorIs(t, err, ErrBadKey)
	require.ErrorIs(t, Write(Key{}, "1"), ErrBadKey)

	require.NoError(t, os.WriteFile(filepath.Join(conf, "text"), []byte("abc\n"), 0o644))
	_, err = ReadInt(MustParse("net/ipv4/conf/eth0.100/text"))
	require.ErrorContains(t, err, "not a number")
}

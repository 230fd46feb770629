package dsrtest_test

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/dsr"
	"github.com/dsrlb/dsrlb/dsr/dsrtest"
)

func frameTo(dst, src net.HardwareAddr, payload string) []byte {
	b := append(append(append([]byte{}, dst...), src...), 0x88, 0xb5)
	return append(b, payload...)
}

func TestDeliveryByMAC(t *testing.T) {
	f := dsrtest.NewFabric()
	a := f.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 1})
	b := f.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 2})
	c := f.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 3})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	require.NoError(t, a.Send(frameTo(b.HardwareAddr(), a.HardwareAddr(), "unicast")))
	pk, err := b.Recv(ctx)
	require.NoError(t, err)
	assert.Equal(t, "unicast", string(pk.Data[14:]))
	assert.Empty(t, c.Pending(), "unicast goes to its owner only")
	assert.Empty(t, a.Pending(), "never back to the sender")

	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	require.NoError(t, a.Send(frameTo(bcast, a.HardwareAddr(), "flood")))
	assert.Len(t, b.Pending(), 1)
	assert.Len(t, c.Pending(), 1)
	assert.Empty(t, a.Pending())

	unknown := net.HardwareAddr{2, 9, 9, 9, 9, 9}
	require.NoError(t, a.Send(frameTo(unknown, a.HardwareAddr(), "unknown")))
	assert.Len(t, b.Pending(), 1, "unknown unicast is flooded")
	assert.Equal(t, 3, a.Sent())

	assert.Error(t, a.Send([]byte{1, 2, 3}), "shorter than an Ethernet header")
}

func TestForwarderSemantics(t *testing.T) {
	f := dsrtest.NewFabric()
	a := f.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 1})
	b := f.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 2})
	var _ dsr.Forwarder = a

	frames := make([]dsr.Frame, 4)
	for i := range frames {
		frames[i].Buf = make([]byte, 64)
	}
	off := dsr.Offload{Flags: dsr.OffloadChecksumPartial, ChecksumStart: 34, ChecksumOffset: 16}
	out := []dsr.Frame{{Buf: frameTo(b.HardwareAddr(), a.HardwareAddr(), "x"), Offload: off}}
	out[0].N = len(out[0].Buf)
	for range 6 {
		n, err := a.WriteBatch(out)
		require.NoError(t, err)
		require.Equal(t, 1, n)
	}
	n, err := b.ReadBatch(frames)
	require.NoError(t, err)
	assert.Equal(t, 4, n, "a batch is filled up to its size")
	assert.Equal(t, off, frames[0].Offload, "offload metadata travels with the frame")
	n, err = b.ReadBatch(frames)
	require.NoError(t, err)
	assert.Equal(t, 2, n)

	// Oversized frames are dropped, never truncated.
	big := frameTo(b.HardwareAddr(), a.HardwareAddr(), string(make([]byte, 100)))
	require.NoError(t, a.Send(big))
	require.NoError(t, a.Send(frameTo(b.HardwareAddr(), a.HardwareAddr(), "small")))
	n, err = b.ReadBatch(frames)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	assert.Equal(t, "small", string(frames[0].Bytes()[14:]))

	// Deadlines unblock a waiting read.
	require.NoError(t, b.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, err = b.ReadBatch(frames)
	assert.True(t, errors.Is(err, os.ErrDeadlineExceeded))
	done := make(chan error, 1)
	require.NoError(t, b.SetReadDeadline(time.Time{}))
	go func() { _, err := b.ReadBatch(frames); done <- err }()
	require.NoError(t, b.SetReadDeadline(time.Unix(1, 0)))
	assert.True(t, errors.Is(<-done, os.ErrDeadlineExceeded), "changing the deadline wakes a blocked read")

	require.NoError(t, b.Close())
	_, err = b.ReadBatch(frames)
	assert.ErrorIs(t, err, dsrtest.ErrClosed)
}

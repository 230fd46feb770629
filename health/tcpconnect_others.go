//go:build !linux

package health

import (
	"context"
	"net/netip"
)

func connectProbe(context.Context, netip.AddrPort) error { return ErrUnsupported }

const haveConnectProbe = false

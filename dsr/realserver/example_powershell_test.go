package realserver_test

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/dsrlb/dsrlb/dsr/realserver"
)

// The PowerShell for a Windows L2 DSR server; L3 modes are refused.
func ExampleWindowsScript() {
	vips := []netip.Addr{netip.MustParseAddr("192.0.2.100")}
	script, err := realserver.WindowsScript(&realserver.WindowsConfig{VIPs: vips}, false)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(script) > 0)
	_, err = realserver.WindowsScript(&realserver.WindowsConfig{VIPs: vips, Mode: realserver.ModeGUE}, false)
	fmt.Println(errors.Is(err, realserver.ErrWindowsL3))
	// Output:
	// true
	// true
}

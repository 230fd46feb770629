//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package decap_test

import (
	"fmt"
	"net/netip"

	"github.com/dsrlb/dsrlb/internal/decap"
)

// Attach the program to the interface the balancer's tunnel packets arrive
// on (as root); it stays attached until Detach, and Get reads its counters
// from any later process.
func ExampleAttach() {
	st, err := decap.Attach("eth0", &decap.Config{
		Balancers: []netip.Addr{netip.MustParseAddr("203.0.113.2")},
		Locals:    []netip.Addr{netip.MustParseAddr("198.51.100.21")},
		GUE:       true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("program", st.ProgramID, "native", st.Native)
	if s, err := decap.Get("eth0"); err == nil {
		fmt.Println("decapsulated", s.Stats.Decapsulated(), "dropped", s.Stats.Dropped())
	}
}

package netlab

import (
	"context"
	"testing"
)

// BenchmarkIntegrationNew measures building and closing a default lab
// (6 namespaces, 3 server children), the fixed cost every lab test pays.
func BenchmarkIntegrationNew(b *testing.B) {
	RequirePrivileged(b)
	for b.Loop() {
		l, err := New(context.Background(), nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIntegrationDo measures one Host.Do round trip (a fresh thread
// entering a namespace), the cost of every Host helper.
func BenchmarkIntegrationDo(b *testing.B) {
	l := NewT(b, &Config{Servers: 1, NoServerProcesses: true})
	h := l.Clients[0]
	for b.Loop() {
		if err := h.Do(func() error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

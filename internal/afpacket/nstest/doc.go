// Package nstest builds throw-away network namespaces joined by veth pairs
// for the packet socket tests (Linux only). It is deliberately tiny; full
// topologies live in internal/netlab.
package nstest

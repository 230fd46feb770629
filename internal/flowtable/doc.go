// Package flowtable is the balancer's bounded flow (connection-affinity)
// table: it remembers, for every live 5-tuple, the backend first picked for
// it, so that every later packet of the flow goes to the same backend even
// when the backend set changes.
//
// Lookup runs once per forwarded frame on several forwarding workers at
// once, so it takes no lock and allocates nothing: the table is split into
// shards, each an open-addressing (Robin Hood, linear probing) array of
// compact 48-byte entries guarded by a sequence counter. Writers (Insert,
// Delete, Reassign, Sweep) serialise on a per-shard mutex; readers retry
// when a writer moved entries under them.
//
// Lookup is built for tables far larger than the processor's caches. A
// one-byte tag per slot, kept in a small array of its own, lets a lookup
// compare the tags of its whole probe window at once and read the one slot
// they point to, with no branch that depends on the table's contents, so
// the processor overlaps the cache misses of consecutive packets. On
// Linux, large tables are mapped on transparent huge pages, which spares
// most lookups a TLB miss. Prefetch lets a caller with a batch of packets
// start the cache misses of all of them before looking any up, so that
// they overlap; the balancer does so for every batch it receives. At a
// million flows a hit looked up that way costs about 0.87 times a Go
// map's, and looked up alone about 1.1 times (see
// BenchmarkBatchedLookupVersusGoMap and BenchmarkLookupVersusGoMap); at ten
// thousand, all in cache, about 1.2 to 1.3 times.
//
// Memory is bounded: every slot is allocated by New and the table never
// holds more than Config.MaxFlows flows. A flood of new flows cannot push
// out established ones: when an insert finds no room it reuses an expired
// entry, else evicts the least recently seen embryonic one (a flow that has
// seen a single packet), else it is refused with ErrFull and the caller
// forwards the packet without state.
//
// Time is coarse (Tick, 100 ms) and supplied by the caller, which keeps the
// hot path free of clock reads and makes every timeout testable.
package flowtable

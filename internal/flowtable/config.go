package flowtable

import (
	"fmt"
	"math"
	"time"
)

// Defaults applied to zero Config fields.
const (
	DefaultMaxFlows            = 1 << 18
	DefaultShards              = 256
	DefaultTCPTimeout          = 15 * time.Minute
	DefaultTCPEmbryonicTimeout = 30 * time.Second
	DefaultTCPClosingTimeout   = 10 * time.Second
	DefaultUDPTimeout          = 5 * time.Minute
	DefaultUDPEmbryonicTimeout = 30 * time.Second
	DefaultOtherTimeout        = 1 * time.Minute

	// MaxMaxFlows is the largest accepted Config.MaxFlows (about 4.5 GiB of
	// slots); beyond it a typo would take the machine's memory.
	MaxMaxFlows = 1 << 26
	// maxShards bounds Config.Shards; more shards than cores times a few
	// hundred buy nothing.
	maxShards = 1 << 16
	// maxTimeout keeps every timeout inside the wrap-safe range of Tick.
	maxTimeout = time.Duration(math.MaxInt32) * TickDuration
)

// Config tunes a Table. The zero value (or a nil *Config) is valid: every
// field documents its default. An idle timeout is the time since the flow's
// last packet after which the entry is expired: a Lookup misses it and Sweep
// or a later Insert removes it.
type Config struct {
	// MaxFlows is the most flows the table holds; New allocates the memory
	// for all of them (about 72 bytes per flow at 1M) up front, so the
	// table never grows. On Linux a table of more than about 8 MiB is
	// mapped outside the Go heap, on huge pages, and given back when the
	// table is garbage collected. Zero means DefaultMaxFlows (262144).
	// Must be at most MaxMaxFlows.
	MaxFlows int
	// Shards is the number of independently locked parts. More shards mean
	// less contention between writers. It is rounded up to a power of two,
	// then halved while a shard would hold fewer than 64 flows. Zero means
	// DefaultShards (256).
	Shards int

	// TCPTimeout is the idle timeout of an established TCP flow. Zero means
	// DefaultTCPTimeout (15 min).
	TCPTimeout time.Duration
	// TCPEmbryonicTimeout is the idle timeout of a TCP flow that has seen
	// only its first packet. Short, so that half-open floods age out. Zero
	// means DefaultTCPEmbryonicTimeout (30 s).
	TCPEmbryonicTimeout time.Duration
	// TCPClosingTimeout is the idle timeout of a TCP flow after FIN or RST.
	// Zero means DefaultTCPClosingTimeout (10 s).
	TCPClosingTimeout time.Duration
	// UDPTimeout is the idle timeout of a UDP flow that has seen more than
	// one datagram. Zero means DefaultUDPTimeout (5 min).
	UDPTimeout time.Duration
	// UDPEmbryonicTimeout is the idle timeout of a UDP flow that has seen a
	// single datagram (a DNS query, a scan). Zero means
	// DefaultUDPEmbryonicTimeout (30 s).
	UDPEmbryonicTimeout time.Duration
	// OtherTimeout is the idle timeout of flows of every other protocol, in
	// any state. Zero means DefaultOtherTimeout (1 min).
	OtherTimeout time.Duration

	// Seed keys the hash (see Table.Hash). Zero means a random seed, which
	// keeps remote senders from predicting which flows share a shard.
	// Tests set it to make placement reproducible.
	Seed uint64

	// OnEvict, when set, is called for each entry that Insert removed to
	// make room (an embryonic flow evicted, or an expired flow replaced),
	// so that per-backend flow counts stay right. It runs on the inserting
	// goroutine after the shard lock is released and must be fast. k is
	// passed by value so that Insert allocates nothing. Entries removed by
	// Sweep are reported to Sweep's callback, and Delete reports nothing.
	OnEvict func(k Key, backend uint32)
}

// timeoutTicks converts a timeout to ticks, at least one.
func timeoutTicks(d time.Duration) int32 {
	t := int32(d / TickDuration)
	if t < 1 {
		t = 1
	}
	return t
}

// resolved is a validated Config with defaults applied.
type resolved struct {
	maxFlows, shards int
	// timeouts in ticks, indexed by protocol class (tcp, udp, other) and
	// State.
	timeouts [3][4]int32
	seed     uint64
	onEvict  func(k Key, backend uint32)
}

func (c *Config) resolve() (resolved, error) {
	var cc Config
	if c != nil {
		cc = *c
	}
	var r resolved
	switch {
	case cc.MaxFlows == 0:
		r.maxFlows = DefaultMaxFlows
	case cc.MaxFlows < 0 || cc.MaxFlows > MaxMaxFlows:
		return r, fmt.Errorf("flowtable: Config.MaxFlows %d out of range (0 < MaxFlows <= %d)", cc.MaxFlows, MaxMaxFlows)
	default:
		r.maxFlows = cc.MaxFlows
	}
	switch {
	case cc.Shards == 0:
		r.shards = DefaultShards
	case cc.Shards < 0 || cc.Shards > maxShards:
		return r, fmt.Errorf("flowtable: Config.Shards %d out of range (0 < Shards <= %d)", cc.Shards, maxShards)
	default:
		r.shards = cc.Shards
	}
	p := 1
	for p < r.shards {
		p <<= 1
	}
	for p > 1 && r.maxFlows/p < minShardFlows {
		p >>= 1
	}
	r.shards = p

	durs := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"TCPTimeout", &cc.TCPTimeout, DefaultTCPTimeout},
		{"TCPEmbryonicTimeout", &cc.TCPEmbryonicTimeout, DefaultTCPEmbryonicTimeout},
		{"TCPClosingTimeout", &cc.TCPClosingTimeout, DefaultTCPClosingTimeout},
		{"UDPTimeout", &cc.UDPTimeout, DefaultUDPTimeout},
		{"UDPEmbryonicTimeout", &cc.UDPEmbryonicTimeout, DefaultUDPEmbryonicTimeout},
		{"OtherTimeout", &cc.OtherTimeout, DefaultOtherTimeout},
	}
	for _, d := range durs {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0 || *d.v > maxTimeout:
			return r, fmt.Errorf("flowtable: Config.%s %v out of range (0 < timeout <= %v)", d.name, *d.v, maxTimeout)
		}
	}
	tcp, udp, other := timeoutTicks(cc.TCPTimeout), timeoutTicks(cc.UDPTimeout), timeoutTicks(cc.OtherTimeout)
	r.timeouts[classTCP] = [4]int32{timeoutTicks(cc.TCPEmbryonicTimeout), tcp, timeoutTicks(cc.TCPClosingTimeout), tcp}
	r.timeouts[classUDP] = [4]int32{timeoutTicks(cc.UDPEmbryonicTimeout), udp, udp, udp}
	r.timeouts[classOther] = [4]int32{other, other, other, other}
	r.seed = cc.Seed
	r.onEvict = cc.OnEvict
	return r, nil
}

// Protocol classes indexing resolved.timeouts.
const (
	classTCP = iota
	classUDP
	classOther
)

func protoClass(proto uint8) int {
	switch proto {
	case protoTCP:
		return classTCP
	case protoUDP:
		return classUDP
	}
	return classOther
}

// TimeoutTicks returns cfg's idle timeouts in ticks, indexed by protocol
// class (0 TCP, 1 UDP, 2 every other protocol) and State, exactly as a
// Table built from cfg applies them (a nil cfg means the defaults). Another
// data plane that keeps its own flow state (the XDP program) expires flows
// by the same numbers.
func TimeoutTicks(cfg *Config) ([3][4]int32, error) {
	r, err := cfg.resolve()
	return r.timeouts, err
}

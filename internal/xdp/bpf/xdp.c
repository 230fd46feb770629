// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
/*
 * The XDP half of the dsrlb data plane. It runs the plan the Go control
 * plane writes into its maps and decides exactly as dsr/worker.go does for
 * what it handles: TCP and UDP to a VIP service whose scheduler it
 * implements (a lookup table indexed by the flow hash), and ICMP errors
 * about such flows. Everything else goes up to the Go path with XDP_PASS,
 * counted by reason. See ../doc.go.
 */
#include "common.h"
#include "mul128.h"

char __license[] SEC("license") = "Dual MIT/GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8

#define PROTO_ICMP 1
#define PROTO_TCP 6
#define PROTO_UDP 17
#define PROTO_ICMPV6 58

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

/* Flow states: flowtable.State. */
enum flow_state {
	STATE_EMBRYONIC = 0,
	STATE_ESTABLISHED = 1,
	STATE_CLOSING = 2,
};

/* Backend IDs: slot in the low 20 bits, generation in the high 12
 * (dsr/snapshot.go). */
#define ID_SLOT_MASK 0xfffff
#define ID_NONE 0xffffffff

/* Flags of struct backend_entry and struct service_entry. */
#define BACKEND_USABLE 1
#define SERVICE_CAPABLE 1

/* Why a frame went up to the Go path (Go: PassReason). */
enum pass_reason {
	PASS_NOT_OURS = 0,
	PASS_NOT_VIP,
	PASS_NO_SERVICE,
	PASS_NOT_CAPABLE,
	PASS_FRAGMENT,
	PASS_EXT_HEADER,
	PASS_MALFORMED,
	PASS_ICMP_NO_FLOW,
	PASS_OTHER,
	PASS_CSUM_PARTIAL,
	PASS_MAX,
};

/* Why a frame was dropped (Go: DropReason). */
enum drop_reason {
	DROP_NO_BACKEND = 0,
	DROP_MAX,
};

/* The flow table's key: flowtable.Key, IPv4 addresses IPv4-mapped, ports
 * in host byte order, the padding zero. */
struct flow_key {
	__u8 src[16];
	__u8 dst[16];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
} __attribute__((aligned(8)));

struct flow_entry {
	__u32 backend;   /* backend ID, with generation */
	__u32 last_seen; /* tick of the last packet */
	__u8 state;      /* enum flow_state */
	__u8 pad[7];
};

struct service_key {
	__u8 vip[16];
	__u16 port; /* host byte order; 0: the VIP's all-ports service */
	__u8 proto;
	__u8 pad;
	__u16 vlan; /* VLAN ID; 0: untagged or priority-tagged */
};

struct service_entry {
	__u32 index; /* into tables and service_counters */
	__u32 flags; /* SERVICE_CAPABLE */
};

struct backend_entry {
	__u32 id;      /* the ID flows name; must match, generation included */
	__u32 flags;   /* BACKEND_USABLE */
	__u32 service; /* service index, for the control plane */
	__u8 mac[6];
	__u16 vlan; /* its service's VLAN: a flow of another VLAN is rescheduled */
};

struct settings {
	__u64 seed; /* the balancer's flow-hash seed */
	__u32 now;  /* current tick, written by the control plane */
	__u8 mac[6];
	__u8 pad[2];
	/* Idle timeouts in ticks by protocol class (tcp, udp, other) and
	 * state, as flowtable resolves them. */
	__s32 timeouts[3][4];
	/* The longest TCP or UDP segment (header and payload) whose partial
	 * checksum the program completes; longer ones are passed as
	 * csum_partial. At most CSUM_MAX_LEN; the control plane writes it. */
	__u32 csum_max;
};

struct global_counters {
	__u64 received;
	__u64 tx;
	__u64 stateless; /* forwarded, but the flow table refused the entry */
	__u64 csum_completed; /* forwarded with a partial checksum completed */
	__u64 pass[PASS_MAX];
	__u64 drop[DROP_MAX];
};

struct backend_counters {
	__u64 packets;
	__u64 bytes;
	__u64 flows;
	__u64 syn_retransmits;
};

struct service_counters {
	__u64 flows;
	__u64 rescheduled;
};

/* One record of the hash check program (see xdp_hash). */
struct hash_record {
	struct flow_key key;
	__u64 seed;
	__u64 n;
	__u64 hash; /* out */
	__u64 slot; /* out */
};

/* Map sizes here are placeholders: Load sets them from its Config. */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct settings);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct flow_key);
	__type(value, struct flow_entry);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct service_key);
	__type(value, struct service_entry);
} services SEC(".maps");

/* Every VIP that has a service, to tell not_vip from no_service. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u8[16]);
	__type(value, __u8);
} vips SEC(".maps");

/* A service's lookup table: element 0 holds the table size M, elements
 * 1..M the backend IDs (ID_NONE: no backend). Keeping M inside the map
 * makes a swapped-in table self-describing, so the program never pairs a
 * size with the wrong table. */
struct table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_INNER_MAP);
	__type(key, __u32);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 64);
	__type(key, __u32);
	__array(values, struct table);
} tables SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct backend_entry);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct global_counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct backend_counters);
} be_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct service_counters);
} svc_counters SEC(".maps");

/* Constants of flowtable's hash mixer. */
#define HASH_K0 0xa0761d6478bd642fULL
#define HASH_K1 0xe7037ed1a0b428dbULL
#define HASH_K2 0x8ebc6af09c88c6e3ULL
#define HASH_K3 0x589965cc75374cc3ULL
#define HASH_K4 0x1d8e4e27c47d124fULL

/* flow_hash is flowtable.Key.Hashes(seed)'s first result. The address
 * words are read little-endian, as Go reads them. */
static __always_inline __u64 flow_hash(const struct flow_key *k, __u64 seed)
{
	__u64 s0, s1, d0, d1;
	__builtin_memcpy(&s0, &k->src[0], 8);
	__builtin_memcpy(&s1, &k->src[8], 8);
	__builtin_memcpy(&d0, &k->dst[0], 8);
	__builtin_memcpy(&d1, &k->dst[8], 8);
	__u64 pp = (__u64)k->sport | (__u64)k->dport << 16 | (__u64)k->proto << 32;
	__u64 a = mix(s0 ^ seed ^ HASH_K0, s1 ^ seed ^ HASH_K1);
	__u64 b = mix(d0 ^ seed ^ HASH_K2, d1 ^ seed ^ HASH_K3);
	return mix(a ^ pp ^ HASH_K4, b ^ seed ^ HASH_K0);
}

/* next_state is flowtable's nextState. */
static __always_inline __u8 next_state(__u8 st, __u8 proto, __u8 flags)
{
	if (proto != PROTO_TCP)
		return st == STATE_EMBRYONIC ? STATE_ESTABLISHED : st;
	if (flags & (TCP_FIN | TCP_RST))
		return STATE_CLOSING;
	if ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
		return st == STATE_CLOSING ? STATE_EMBRYONIC : st;
	if (st == STATE_EMBRYONIC && (flags & TCP_ACK))
		return STATE_ESTABLISHED;
	return st;
}

/* expired is flowtable's expiry rule: idle longer than the timeout of the
 * flow's protocol class and state, ticks compared by wrapped difference. */
static __always_inline int expired(const struct settings *cfg, const struct flow_entry *f, __u8 proto)
{
	__u32 class = proto == PROTO_TCP ? 0 : proto == PROTO_UDP ? 1 : 2;
	__s32 idle = (__s32)(cfg->now - f->last_seen);
	return idle > cfg->timeouts[class][f->state & 3];
}

/* usable_backend returns the backend that ID id names if it may carry
 * flows: the slot's entry has the same ID (generation included) and is
 * flagged usable. */
static __always_inline struct backend_entry *usable_backend(__u32 id)
{
	__u32 slot = id & ID_SLOT_MASK;
	struct backend_entry *be = bpf_map_lookup_elem(&backends, &slot);
	if (!be || be->id != id || !(be->flags & BACKEND_USABLE))
		return 0;
	return be;
}

/* What one frame came to. */
struct verdict {
	int action;
	__u32 reason; /* enum pass_reason or drop_reason */
	__u16 vlan;   /* the frame's VLAN ID (input), 0 when untagged */
	struct backend_entry *be;
	/* A TCP or UDP segment whose checksum is partial (csum_len > 0): where
	 * it starts in the frame, its length and the offset of the checksum
	 * field in it. */
	__u32 csum_off;
	__u32 csum_len;
	__u32 csum_field;
};

static __always_inline int pass(struct verdict *v, __u32 reason)
{
	v->action = XDP_PASS;
	v->reason = reason;
	return 0;
}

static __always_inline int drop(struct verdict *v, __u32 reason)
{
	v->action = XDP_DROP;
	v->reason = reason;
	return 0;
}

static __always_inline int forward(struct verdict *v, struct backend_entry *be)
{
	v->action = XDP_TX;
	v->be = be;
	return 0;
}

static __always_inline void count_flow(struct backend_entry *be, __u32 svc, int rescheduled)
{
	__u32 slot = be->id & ID_SLOT_MASK;
	struct backend_counters *bc = bpf_map_lookup_elem(&be_counters, &slot);
	if (bc)
		bc->flows++;
	struct service_counters *sc = bpf_map_lookup_elem(&svc_counters, &svc);
	if (sc) {
		if (rescheduled)
			sc->rescheduled++;
		else
			sc->flows++;
	}
}

/* schedule finds the flow's service and picks its backend: the service
 * of the exact port, else the VIP's all-ports service; then
 * table[reduce(hash, M)]. On failure it sets the verdict and returns 0;
 * *not_capable says the service exists but its scheduler is not one the
 * program runs. */
static __always_inline struct backend_entry *schedule(const struct settings *cfg, const struct flow_key *k,
						__u32 *svc_index, struct verdict *v)
{
	struct service_key sk = {};
	__builtin_memcpy(sk.vip, k->dst, 16);
	sk.port = k->dport;
	sk.proto = k->proto;
	sk.vlan = v->vlan;
	struct service_entry *svc = bpf_map_lookup_elem(&services, &sk);
	if (!svc) {
		sk.port = 0;
		svc = bpf_map_lookup_elem(&services, &sk);
	}
	if (!svc) {
		if (bpf_map_lookup_elem(&vips, k->dst))
			pass(v, PASS_NO_SERVICE);
		else
			pass(v, PASS_NOT_VIP);
		return 0;
	}
	if (!(svc->flags & SERVICE_CAPABLE)) {
		pass(v, PASS_NOT_CAPABLE);
		return 0;
	}
	__u32 index = svc->index;
	*svc_index = index;
	void *table = bpf_map_lookup_elem(&tables, &index);
	if (!table) {
		drop(v, DROP_NO_BACKEND);
		return 0;
	}
	__u32 zero = 0;
	__u32 *m = bpf_map_lookup_elem(table, &zero);
	if (!m || *m == 0) {
		drop(v, DROP_NO_BACKEND);
		return 0;
	}
	__u32 slot = (__u32)reduce(flow_hash(k, cfg->seed), *m) + 1;
	__u32 *id = bpf_map_lookup_elem(table, &slot);
	if (!id || *id == ID_NONE) {
		drop(v, DROP_NO_BACKEND);
		return 0;
	}
	struct backend_entry *be = usable_backend(*id);
	if (!be) {
		drop(v, DROP_NO_BACKEND);
		return 0;
	}
	return be;
}

/* move_flow gives the existing flow f a new pick: for a new connection on
 * the ports of a closed one (rescheduled == 0), or because its backend can
 * no longer take it (rescheduled == 1). A service the program does not run
 * takes the flow back to the Go path: its entry goes, so that the Go path
 * owns the flow from now on. */
static __always_inline int move_flow(const struct settings *cfg, const struct flow_key *k, struct flow_entry *f,
				     int rescheduled, struct verdict *v)
{
	__u32 svc = 0;
	struct backend_entry *be = schedule(cfg, k, &svc, v);
	if (!be) {
		if (v->reason == PASS_NOT_CAPABLE && v->action == XDP_PASS)
			bpf_map_delete_elem(&flows, k);
		return 0;
	}
	f->backend = be->id;
	count_flow(be, svc, rescheduled);
	return forward(v, be);
}

/* flow decides a TCP or UDP packet (dsr worker.flow). */
static __always_inline int flow(const struct settings *cfg, const struct flow_key *k, __u8 tcp_flags,
				struct verdict *v)
{
	__u8 flags = k->proto == PROTO_TCP ? tcp_flags : 0;
	struct flow_entry *f = bpf_map_lookup_elem(&flows, k);
	if (f && !expired(cfg, f, k->proto)) {
		__u8 prev = f->state;
		__u8 st = next_state(prev, k->proto, flags);
		/* Write only what changed: an unchanged cache line is not
		 * bounced between CPUs. */
		if (f->last_seen != cfg->now)
			f->last_seen = cfg->now;
		if (st != prev)
			f->state = st;
		__u32 id = f->backend;
		if ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
			if (prev == STATE_CLOSING)
				return move_flow(cfg, k, f, 0, v);
			if (prev == STATE_EMBRYONIC) {
				/* A client retrying its first packet. */
				struct backend_entry *be = usable_backend(id);
				if (be) {
					__u32 slot = id & ID_SLOT_MASK;
					struct backend_counters *bc =
						bpf_map_lookup_elem(&be_counters, &slot);
					if (bc)
						bc->syn_retransmits++;
				}
			}
		}
		struct backend_entry *be = usable_backend(id);
		if (be && be->vlan == v->vlan)
			return forward(v, be);
		return move_flow(cfg, k, f, 1, v);
	}

	/* A miss, or an expired entry the insert below replaces. */
	__u32 svc = 0;
	struct backend_entry *be = schedule(cfg, k, &svc, v);
	if (!be)
		return 0;
	if (k->proto == PROTO_TCP && (flags & TCP_RST))
		return forward(v, be); /* a lone RST creates no state */
	struct flow_entry nf = {
		.backend = be->id,
		.last_seen = cfg->now,
		.state = STATE_EMBRYONIC,
	};
	if (bpf_map_update_elem(&flows, k, &nf, BPF_ANY) == 0) {
		count_flow(be, svc, 0);
	} else {
		__u32 zero = 0;
		struct global_counters *gc = bpf_map_lookup_elem(&counters, &zero);
		if (gc)
			gc->stateless++;
	}
	return forward(v, be);
}

/* Partial checksums.
 *
 * A sender whose device offloads checksums (veth does by default) hands
 * over TCP and UDP packets as CHECKSUM_PARTIAL: the checksum field holds
 * only the ones' complement sum of the pseudo-header, folded to 16 bits and
 * not complemented (the kernel's ~csum_tcpudp_magic / ~csum_ipv6_magic),
 * and the device is expected to finish it. veth runs XDP on such frames,
 * and XDP_TX sends the bytes as they are, without the offload metadata:
 * the receiver would drop them as corrupt. So the program finishes the
 * checksum of every TCP or UDP frame it forwards whose field equals the
 * pseudo-header sum.
 *
 * Sums here are taken over values loaded in memory order (native loads of
 * network-order words): the ones' complement sum commutes with byte
 * swapping, so a result stored natively is the network-order checksum.
 */

/* CSUM_CHUNK bytes per bpf_csum_diff call; CSUM_CHUNKS of them bound the
 * loop, so a segment of up to CSUM_MAX_LEN bytes (a 9000-byte MTU's) is
 * completed. */
#define CSUM_CHUNK 512
#define CSUM_CHUNKS 18
#define CSUM_MAX_LEN (CSUM_CHUNK * CSUM_CHUNKS)
/* The transport header's offset in a frame is at most 14 + 4 (one tag) +
 * 60 (the longest IPv4 header). */
#define CSUM_MAX_OFF 128

static __always_inline __u16 csum_fold64(__u64 a)
{
	a = (a & 0xffffffff) + (a >> 32);
	a = (a & 0xffffffff) + (a >> 32);
	a = (a & 0xffff) + (a >> 16);
	a = (a & 0xffff) + (a >> 16);
	return (__u16)a;
}

/* pseudo_sum is the folded, uncomplemented pseudo-header sum of a
 * segment of len bytes of protocol proto between the key's addresses. It
 * is computed in the IPv6 form for both families: an IPv4-mapped address
 * adds 0xffff, which is a ones' complement zero, and the IPv4 and IPv6
 * forms of the length and protocol words add up alike. The result is never
 * 0 (the protocol word is not), as the kernel's. */
static __always_inline __u16 pseudo_sum(const struct flow_key *k, __u32 len)
{
	__u32 w[8];
	__builtin_memcpy(&w[0], k->src, 16);
	__builtin_memcpy(&w[4], k->dst, 16);
	__u64 a = (__u64)w[0] + w[1] + w[2] + w[3] + w[4] + w[5] + w[6] + w[7];
	a += bpf_htonl(len);
	a += bpf_htonl((__u32)k->proto);
	return csum_fold64(a);
}

/* complete_csum finishes the partial checksum of the segment of len bytes
 * at offset off of the frame, whose checksum field (at off + field) holds
 * the pseudo-header sum. The full checksum is the complement of the sum of
 * the pseudo-header and the segment with the field zeroed; since the field
 * holds exactly the pseudo-header sum, that is the complement of the sum
 * of the segment as it is. A result of 0 is stored as 0xffff, as the
 * kernel and frame.CompleteChecksum do (for UDP over IPv4, 0 means "no
 * checksum").
 *
 * A frame whose checksum was already correct and happens to equal the
 * pseudo-header sum (one in 2^16) is written the same value it had: both
 * are the complement of the same sum. So a valid frame never changes.
 *
 * It returns 0, or -1 without having written anything when the segment
 * does not fit the frame or the bound. It is a global function so that the
 * verifier checks it once, not once for every path that reaches it. */
__attribute__((noinline)) int complete_csum(struct xdp_md *ctx, __u32 off, __u32 len, __u32 field)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (off > CSUM_MAX_OFF || len > CSUM_MAX_LEN || (field != 6 && field != 16) || field + 2 > len)
		return -1;
	__u8 *seg = (__u8 *)data + off;
	__u64 acc = 0;
	__u32 done = 0;
	for (int i = 0; i < CSUM_CHUNKS; i++) {
		if (done + CSUM_CHUNK > len)
			break;
		__u8 *p = seg + done;
		if ((void *)(p + CSUM_CHUNK) > end)
			return -1;
		acc += (__u32)bpf_csum_diff(0, 0, (__be32 *)p, CSUM_CHUNK, 0);
		done += CSUM_CHUNK;
	}
	__u32 rem = len - done; /* below CSUM_CHUNK */
	__u8 *p = seg + done;
#define CSUM_STEP(n)                                                         \
	if (rem & (n)) {                                                     \
		if ((void *)(p + (n)) > end)                                 \
			return -1;                                           \
		acc += (__u32)bpf_csum_diff(0, 0, (__be32 *)p, (n), 0);      \
		p += (n);                                                    \
	}
	CSUM_STEP(256)
	CSUM_STEP(128)
	CSUM_STEP(64)
	CSUM_STEP(32)
	CSUM_STEP(16)
	CSUM_STEP(8)
	CSUM_STEP(4)
#undef CSUM_STEP
	if (rem & 2) {
		if ((void *)(p + 2) > end)
			return -1;
		acc += *(__u16 *)p;
		p += 2;
	}
	if (rem & 1) {
		/* An odd last byte is the high byte of a word padded with zero. */
		if ((void *)(p + 1) > end)
			return -1;
		__u16 w = 0;
		*(__u8 *)&w = *p;
		acc += w;
	}
	__u16 c = ~csum_fold64(acc);
	if (c == 0)
		c = 0xffff;
	/* The field's offset is bounded afresh: the verifier may have
	 * forgotten field's range if the compiler spilled it. */
	__u8 *f = seg + (field & 0x1e);
	if ((void *)(f + 2) > end)
		return -1;
	*(__u16 *)f = c;
	return 0;
}

/* Where the parse of one frame got to. */
struct packet {
	struct flow_key key;
	__u8 tcp_flags;
	__u8 version;
};

/* Frame fields are read and written a word at a time where they are
 * wider than a byte: byte-wise copies, which is what __builtin_memcpy makes
 * of a pointer of unknown alignment, cost several times the instructions.
 * Every such access is aligned to its size where the verifier insists on
 * alignment (it then assumes the frame starts 2 bytes past a 4-byte
 * boundary, NET_IP_ALIGN): MACs go by 16 bits, IP addresses by 32 (the IP
 * header starts 14 or 18 bytes into the frame, and an ICMP error's quoted
 * header a multiple of 4 bytes after that). */
#define LOAD32(p) (*(const __u32 *)(const void *)(p))
#define LOAD16(p) (*(const __u16 *)(const void *)(p))
#define STORE16(p, v) (*(__u16 *)(void *)(p) = (v))

/* set_addr4 stores an IPv4 address IPv4-mapped, as netip.Addr.As16, into
 * an 8-byte aligned key field. */
static __always_inline void set_addr4(__u8 *dst, const __u8 *src)
{
	*(__u64 *)dst = 0;
	*(__u32 *)(dst + 8) = bpf_htonl(0x0000ffff);
	*(__u32 *)(dst + 12) = LOAD32(src);
}

/* set_addr6 copies an IPv6 address into an 8-byte aligned key field. */
static __always_inline void set_addr6(__u8 *dst, const __u8 *src)
{
	*(__u32 *)dst = LOAD32(src);
	*(__u32 *)(dst + 4) = LOAD32(src + 4);
	*(__u32 *)(dst + 8) = LOAD32(src + 8);
	*(__u32 *)(dst + 12) = LOAD32(src + 12);
}

static __always_inline int is_icmp_error(__u8 version, __u8 type)
{
	if (version == 4)
		return type == 3 || type == 11 || type == 12;
	return type >= 1 && type <= 4;
}

/* icmp_error sends an ICMP error to the backend of the flow it quotes (dsr
 * worker.icmpError). inner points at the quoted IP header; ipend is where
 * the outer IP packet ends. */
static __always_inline int icmp_error(const struct settings *cfg, __u8 version, void *inner, void *ipend,
				      void *end, struct verdict *v)
{
	struct flow_key k = {};
	__u8 *t;
	__u8 proto;
	if (version == 4) {
		__u8 *h = inner;
		if ((void *)(h + 20) > end || (void *)(h + 20) > ipend || h[0] >> 4 != 4)
			return pass(v, PASS_ICMP_NO_FLOW);
		__u32 ihl = (__u32)(h[0] & 0x0f) << 2;
		if (ihl < 20 || (void *)h + ihl > ipend)
			return pass(v, PASS_ICMP_NO_FLOW);
		proto = h[9];
		/* The key is the quoted tuple reversed: the quote is a packet
		 * the backend sent from the VIP. */
		set_addr4(k.dst, h + 12);
		set_addr4(k.src, h + 16);
		if (bpf_ntohs(*(__u16 *)(h + 6)) & 0x1fff)
			return pass(v, PASS_ICMP_NO_FLOW); /* a later fragment: no ports */
		t = (__u8 *)h + ihl;
	} else {
		__u8 *h = inner;
		if ((void *)(h + 40) > end || (void *)(h + 40) > ipend || h[0] >> 4 != 6)
			return pass(v, PASS_ICMP_NO_FLOW);
		proto = h[6];
		set_addr6(k.dst, h + 8);
		set_addr6(k.src, h + 24);
		t = h + 40;
	}
	if (!bpf_map_lookup_elem(&vips, k.dst))
		return pass(v, PASS_NOT_VIP);
	if (proto != PROTO_TCP && proto != PROTO_UDP)
		return pass(v, PASS_ICMP_NO_FLOW);
	if ((void *)(t + 4) > end || (void *)(t + 4) > ipend)
		return pass(v, PASS_ICMP_NO_FLOW);
	k.proto = proto;
	k.dport = bpf_ntohs(*(__u16 *)t);
	k.sport = bpf_ntohs(*(__u16 *)(t + 2));
	struct flow_entry *f = bpf_map_lookup_elem(&flows, &k);
	if (!f || expired(cfg, f, proto))
		return pass(v, PASS_ICMP_NO_FLOW);
	/* A lookup without TCP flags, as the Go path makes it. */
	__u8 st = next_state(f->state, proto, 0);
	if (f->last_seen != cfg->now)
		f->last_seen = cfg->now;
	if (st != f->state)
		f->state = st;
	struct backend_entry *be = usable_backend(f->backend);
	if (!be || be->vlan != v->vlan)
		return pass(v, PASS_ICMP_NO_FLOW);
	return forward(v, be);
}

/* mac_equal compares two MAC addresses (BPF has no memcmp). */
static __always_inline int mac_equal(const __u8 *a, const __u8 *b)
{
	return ((LOAD16(a) ^ LOAD16(b)) | (LOAD16(a + 2) ^ LOAD16(b + 2)) |
		(LOAD16(a + 4) ^ LOAD16(b + 4))) == 0;
}

/* set_mac copies a MAC address into the frame. */
static __always_inline void set_mac(__u8 *dst, const __u8 *src)
{
	STORE16(dst, LOAD16(src));
	STORE16(dst + 2, LOAD16(src + 2));
	STORE16(dst + 4, LOAD16(src + 4));
}

/* decide parses the frame and sets the verdict. Its checks are those of
 * internal/frame.Parse for what it handles: whatever the Go parser counts
 * as malformed is passed up, never forwarded. */
static __always_inline int decide(struct xdp_md *ctx, const struct settings *cfg, struct verdict *v)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *eth = data;
	if ((void *)(eth + 14) > end)
		return pass(v, PASS_MALFORMED);
	if (!mac_equal(eth, cfg->mac))
		return pass(v, PASS_NOT_OURS);
	if (mac_equal(eth + 6, cfg->mac))
		return pass(v, PASS_OTHER); /* our own frame */
	__u16 et = bpf_ntohs(*(__u16 *)(eth + 12));
	__u8 *l3 = eth + 14;
	if (et == ETH_P_8021Q || et == ETH_P_8021AD) {
		if ((void *)(eth + 18) > end)
			return pass(v, PASS_MALFORMED);
		v->vlan = bpf_ntohs(*(__u16 *)(eth + 14)) & 0x0fff;
		et = bpf_ntohs(*(__u16 *)(eth + 16));
		l3 = eth + 18;
	}

	struct packet p = {};
	__u8 *l4;
	void *ipend;
	int from_frame = 0;
	if (et == ETH_P_IP) {
		if ((void *)(l3 + 20) > end)
			return pass(v, PASS_MALFORMED);
		if (l3[0] >> 4 != 4)
			return pass(v, PASS_MALFORMED);
		__u32 ihl = (__u32)(l3[0] & 0x0f) << 2;
		if (ihl < 20 || (void *)l3 + ihl > end)
			return pass(v, PASS_MALFORMED);
		__u32 avail = (__u32)(end - (void *)l3);
		__u32 total = bpf_ntohs(*(__u16 *)(l3 + 2));
		if (total == 0 && avail > ihl) {
			/* A GSO super-frame: the frame is the packet. */
			total = avail;
			from_frame = 1;
		}
		if (total < ihl || total > avail)
			return pass(v, PASS_MALFORMED);
		if (bpf_ntohs(*(__u16 *)(l3 + 6)) & 0x3fff)
			return pass(v, PASS_FRAGMENT); /* MF set or an offset */
		ipend = (void *)l3 + total;
		p.version = 4;
		p.key.proto = l3[9];
		set_addr4(p.key.src, l3 + 12);
		set_addr4(p.key.dst, l3 + 16);
		l4 = l3 + ihl;
	} else if (et == ETH_P_IPV6) {
		if ((void *)(l3 + 40) > end)
			return pass(v, PASS_MALFORMED);
		if (l3[0] >> 4 != 6)
			return pass(v, PASS_MALFORMED);
		__u32 avail = (__u32)(end - (void *)l3);
		__u32 total = 40 + (__u32)bpf_ntohs(*(__u16 *)(l3 + 4));
		if (total == 40 && avail > 40) {
			/* A jumbogram or GSO super-frame. */
			total = avail;
			from_frame = 1;
		}
		if (total > avail)
			return pass(v, PASS_MALFORMED);
		ipend = (void *)l3 + total;
		__u8 nh = l3[6];
		/* Hop-by-hop, routing, fragment, destination options, AH. */
		if (nh == 0 || nh == 43 || nh == 44 || nh == 60 || nh == 51)
			return pass(v, PASS_EXT_HEADER);
		p.version = 6;
		p.key.proto = nh;
		set_addr6(p.key.src, l3 + 8);
		set_addr6(p.key.dst, l3 + 24);
		l4 = l3 + 40;
	} else {
		return pass(v, PASS_OTHER); /* ARP, not IP, a second VLAN tag */
	}

	__u32 rem = (__u32)(ipend - (void *)l4);
	switch (p.key.proto) {
	case PROTO_TCP: {
		if (rem < 20 || (void *)(l4 + 20) > end)
			return pass(v, PASS_MALFORMED);
		__u32 doff = (__u32)(l4[12] >> 4) << 2;
		if (doff < 20 || doff > rem)
			return pass(v, PASS_MALFORMED);
		p.key.sport = bpf_ntohs(*(__u16 *)l4);
		p.key.dport = bpf_ntohs(*(__u16 *)(l4 + 2));
		p.tcp_flags = l4[13];
		break;
	}
	case PROTO_UDP: {
		if (rem < 8 || (void *)(l4 + 8) > end)
			return pass(v, PASS_MALFORMED);
		if (!from_frame) {
			__u32 ul = bpf_ntohs(*(__u16 *)(l4 + 4));
			if (ul < 8 || ul > rem)
				return pass(v, PASS_MALFORMED);
		}
		p.key.sport = bpf_ntohs(*(__u16 *)l4);
		p.key.dport = bpf_ntohs(*(__u16 *)(l4 + 2));
		break;
	}
	case PROTO_ICMP:
	case PROTO_ICMPV6:
		if ((p.key.proto == PROTO_ICMP) != (p.version == 4))
			return pass(v, PASS_OTHER);
		if (rem < 8 || (void *)(l4 + 8) > end)
			return pass(v, PASS_MALFORMED);
		if (!is_icmp_error(p.version, l4[0]))
			return pass(v, PASS_OTHER);
		return icmp_error(cfg, p.version, l4 + 8, ipend, end, v);
	default:
		return pass(v, PASS_OTHER);
	}
	/* A partial checksum (see complete_csum) costs full-checksum frames
	 * one pseudo-header sum and a compare. One too long to complete goes
	 * up before it touches the flow table: the Go path forwards it with
	 * its offload metadata. */
	__u32 field = p.key.proto == PROTO_TCP ? 16 : 6;
	if (*(__u16 *)(l4 + field) == pseudo_sum(&p.key, rem)) {
		if (rem > cfg->csum_max || rem > CSUM_MAX_LEN)
			return pass(v, PASS_CSUM_PARTIAL);
		v->csum_off = (__u32)((void *)l4 - data);
		v->csum_len = rem;
		v->csum_field = field;
	}
	return flow(cfg, &p.key, p.tcp_flags, v);
}

/* dsr is the whole of xdp_dsr, inlined there (a call to a global function
 * costs about 9 ns a frame here); bench.c runs the same code in a
 * benchmark-only program. */
static __always_inline int dsr(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct settings *cfg = bpf_map_lookup_elem(&config, &zero);
	struct global_counters *gc = bpf_map_lookup_elem(&counters, &zero);
	if (!cfg || !gc)
		return XDP_PASS;
	gc->received++;

	struct verdict v = {.action = XDP_PASS, .reason = PASS_OTHER};
	decide(ctx, cfg, &v);

	if (v.action == XDP_TX && v.be) {
		/* Not reached: decide checked that the segment fits. */
		if (v.csum_len && complete_csum(ctx, v.csum_off, v.csum_len, v.csum_field) != 0) {
			gc->pass[PASS_CSUM_PARTIAL]++;
			return XDP_PASS;
		}
		if (v.csum_len)
			gc->csum_completed++;
		void *data = (void *)(long)ctx->data;
		void *end = (void *)(long)ctx->data_end;
		if (data + 12 > end)
			return XDP_PASS; /* decide saw 14 bytes: not reached */
		set_mac(data, v.be->mac);
		set_mac(data + 6, cfg->mac);
		__u32 slot = v.be->id & ID_SLOT_MASK;
		struct backend_counters *bc = bpf_map_lookup_elem(&be_counters, &slot);
		if (bc) {
			bc->packets++;
			bc->bytes += (__u64)(end - data);
		}
		gc->tx++;
		return XDP_TX;
	}
	if (v.action == XDP_DROP) {
		if (v.reason < DROP_MAX)
			gc->drop[v.reason]++;
		return XDP_DROP;
	}
	if (v.reason < PASS_MAX)
		gc->pass[v.reason]++;
	return XDP_PASS;
}

SEC("xdp")
int xdp_dsr(struct xdp_md *ctx)
{
	return dsr(ctx);
}

/* NRECORDS hash_records fit one test frame. */
#define NRECORDS 32

/* xdp_hash computes, for each record of the frame, flow_hash(key, seed)
 * and reduce(hash, n) with the very functions xdp_dsr uses, so that a test
 * can compare them with the Go side's. It is never attached. */
SEC("xdp")
int xdp_hash(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	for (int i = 0; i < NRECORDS; i++) {
		struct hash_record *r = data + i * sizeof(struct hash_record);
		if ((void *)(r + 1) > end)
			break;
		struct flow_key k;
		__builtin_memcpy(&k, &r->key, sizeof(k));
		r->hash = flow_hash(&k, r->seed);
		r->slot = reduce(r->hash, r->n);
	}
	return XDP_PASS;
}

/* xdp_pass passes every frame. Attach puts it on the peer of a veth the
 * program runs on: veth delivers XDP_TX frames only to a peer that runs
 * NAPI, which an XDP program (or GRO) turns on. */
SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

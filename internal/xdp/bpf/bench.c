// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
/*
 * Benchmark-only programs, compiled into their own object
 * (xdpbench_bpfel_test.{go,o}) that only the package's test binary embeds:
 * they run xdp.c's code, on the maps of a loaded xdp.Program, in ways
 * BPF_PROG_TEST_RUN can repeat. Nothing here is loaded by the library.
 */
#include "xdp.c"

/* The state of xdp_bench, in the frame's metadata (before ctx->data): the
 * flow number, the step added after each run and its modulus (step below
 * modulus), and a flag: for xdp_bench that the frame's checksum is
 * partial, for xdp_flow_floor that a miss inserts the flow. */
struct bench_state {
	__u32 flow;
	__u32 step;
	__u32 modulus;
	__u32 partial;
};

/* csum_adjust returns checksum field c (host order) after the 16-bit word
 * old of the data it covers became new: c is the complemented sum (a full
 * checksum) or, if !complemented, the sum itself (a partial checksum's
 * pseudo-header sum). */
static __always_inline __u16 csum_adjust(__u16 c, __u16 old, __u16 new, int complemented)
{
	__u32 sum = complemented ? (__u16)~c : c;
	sum += (__u16)~old + (__u32) new;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return complemented ? (__u16)~sum : (__u16)sum;
}

/* xdp_bench runs dsr on the frame and then restores what dsr writes (the
 * MACs and the TCP or UDP checksum field), so that BPF_PROG_TEST_RUN can
 * repeat a frame the program forwards (xdp_dsr rewrites its MACs, and a
 * second run would see another frame). After each run it steps to the next
 * flow: flow number f is the untagged IPv4 TCP or UDP frame (a 20-byte IP
 * header) with the last byte of the source address f >> 16 and the source
 * port f & 0xffff; the IP header checksum and the TCP or UDP checksum,
 * partial or full, are adjusted to match. A benchmark measures one frame's
 * cost as the kernel's time for many runs divided by their number. It is
 * never attached. */
SEC("xdp")
int xdp_bench(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + 54 > end)
		return XDP_ABORTED;
	__u8 *b = data;
	__u32 field = b[23] == PROTO_TCP ? 50 : 40;
	__u16 macs[6];
	set_mac((__u8 *)macs, b);
	set_mac((__u8 *)(macs + 3), b + 6);
	__u16 csum = LOAD16(b + (field & 0x3e));
	int action = dsr(ctx);

	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	struct bench_state *st = (void *)(long)ctx->data_meta;
	if ((void *)(st + 1) > data || data + 54 > end)
		return XDP_ABORTED;
	b = data;
	set_mac(b, (__u8 *)macs);
	set_mac(b + 6, (__u8 *)(macs + 3));
	__u32 f = st->flow + st->step;
	if (f >= st->modulus)
		f -= st->modulus;
	st->flow = f;
	/* The source address's last byte is the low byte of the big-endian
	 * word at 28: the IP header checksum covers it, and the TCP or UDP
	 * checksum through the pseudo-header; a full TCP or UDP checksum also
	 * covers the source port. */
	__u16 prev = b[29], next = (__u8)(f >> 16);
	__u16 prev_port = bpf_ntohs(LOAD16(b + 34)), next_port = (__u16)f;
	b[29] = (__u8)next;
	STORE16(b + 34, bpf_htons(next_port));
	STORE16(b + 24, bpf_htons(csum_adjust(bpf_ntohs(LOAD16(b + 24)), prev, next, 1)));
	__u16 c = csum_adjust(bpf_ntohs(csum), prev, next, !st->partial);
	if (!st->partial)
		c = csum_adjust(c, prev_port, next_port, 1);
	STORE16(b + (field & 0x3e), bpf_htons(c));
	return action;
}

/* xdp_flow_floor does only what the flow table costs dsr: the frame is a
 * struct flow_key; a lookup (st->partial 0) or a lookup and, on a miss, an
 * insert (st->partial 1), then a step to the next flow as xdp_bench steps
 * (the key's last source address byte and its source port). A benchmark
 * compares it with xdp_bench: the kernel's share of a frame's cost. It is
 * never attached. */
SEC("xdp")
int xdp_flow_floor(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct bench_state *st = (void *)(long)ctx->data_meta;
	struct flow_key *k = data;
	if ((void *)(st + 1) > data || (void *)(k + 1) > end)
		return XDP_ABORTED;
	struct flow_key key;
	__builtin_memcpy(&key, k, sizeof(key));
	int action = XDP_TX;
	if (!bpf_map_lookup_elem(&flows, &key) && st->partial) {
		struct flow_entry nf = {.state = STATE_EMBRYONIC};
		if (bpf_map_update_elem(&flows, &key, &nf, BPF_ANY) != 0)
			action = XDP_DROP;
	}
	__u32 f = st->flow + st->step;
	if (f >= st->modulus)
		f -= st->modulus;
	st->flow = f;
	k->src[15] = (__u8)(f >> 16);
	k->sport = (__u16)f;
	return action;
}

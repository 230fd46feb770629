// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
/*
 * The real server's half of L3 DSR: an XDP program on the server's
 * interface that strips the outer headers a dsrlb balancer put around a
 * client packet (IPv4 in IPv4, IPv6 in IPv6, or either in UDP + GUE
 * variant 0 to the configured port), so the stack sees the client's packet
 * to the VIP as if it had arrived on the segment. See ../doc.go.
 *
 * Only packets to one of this server's addresses (map local_addrs) from one
 * of the configured balancers (map balancers) are decapsulated; a tunnel
 * packet from anyone else, and every malformed or truncated tunnel packet,
 * is dropped and counted. Everything that is not a tunnel packet to us
 * passes untouched.
 */

/* The kernel ABI types and constants, shared with the balancer's XDP
 * program. */
#include "../../xdp/bpf/common.h"

char __license[] SEC("license") = "Dual MIT/GPL";

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define PROTO_IPIP 4
#define PROTO_UDP 17
#define PROTO_IPV6 41

/* Counters (Go: Counter). */
enum counter {
	C_PASSED = 0,     /* not a tunnel packet to us: passed untouched */
	C_IPIP4,          /* decapsulated */
	C_IPIP6,
	C_GUE4,
	C_GUE6,
	C_TRUNCATED,      /* dropped: shorter than its headers say */
	C_BAD_VERSION,    /* dropped: GUE version or inner IP version wrong */
	C_BAD_CHECKSUM,   /* dropped: outer IPv4 header checksum wrong */
	C_NOT_BALANCER,   /* dropped: tunnel packet from a source not configured */
	C_BAD_HEADER,     /* dropped: outer IPv4 options or fragment, GUE control message */
	C_MAX,
};

/* settings: the GUE port (network byte order) and whether GUE is on. */
struct settings {
	__be16 gue_port;
	__u8 gue;
	__u8 pad;
};

/* addresses are 16 bytes; IPv4 ones IPv4-mapped (::ffff:a.b.c.d). */
struct addr {
	__u8 b[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct settings);
	__uint(max_entries, 1);
} decap_settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct addr);
	__type(value, __u8);
	__uint(max_entries, 64);
} decap_balancers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct addr);
	__type(value, __u8);
	__uint(max_entries, 64);
} decap_locals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, C_MAX);
} decap_stats SEC(".maps");

static __always_inline int count(__u32 c, int verdict)
{
	__u64 *v = bpf_map_lookup_elem(&decap_stats, &c);
	if (v)
		*v += 1;
	return verdict;
}

static __always_inline void mapped4(struct addr *a, __be32 ip)
{
	__builtin_memset(a, 0, sizeof(*a));
	a->b[10] = 0xff;
	a->b[11] = 0xff;
	__builtin_memcpy(&a->b[12], &ip, 4);
}

static __always_inline int known(void *map, struct addr *a)
{
	return bpf_map_lookup_elem(map, a) != 0;
}

/* ipv4_csum_ok verifies a 20-byte IPv4 header's checksum. */
static __always_inline int ipv4_csum_ok(const __u16 *h)
{
	__u32 s = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		s += h[i];
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return s == 0xffff;
}

/* strip removes len bytes after the l2len-byte link header. */
static __always_inline int strip(struct xdp_md *ctx, __u32 l2len, __u32 len, __u32 c)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 l2[18];

	if (l2len == ETH_HLEN) {
		if (data + ETH_HLEN > data_end)
			return count(C_TRUNCATED, XDP_DROP);
		__builtin_memcpy(l2, data, ETH_HLEN);
	} else {
		if (data + 18 > data_end)
			return count(C_TRUNCATED, XDP_DROP);
		__builtin_memcpy(l2, data, 18);
	}
	if (bpf_xdp_adjust_head(ctx, (int)len))
		return count(C_TRUNCATED, XDP_DROP);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (l2len == ETH_HLEN) {
		if (data + ETH_HLEN > data_end)
			return count(C_TRUNCATED, XDP_DROP);
		__builtin_memcpy(data, l2, ETH_HLEN);
	} else {
		if (data + 18 > data_end)
			return count(C_TRUNCATED, XDP_DROP);
		__builtin_memcpy(data, l2, 18);
	}
	return count(c, XDP_PASS);
}

/* inner_ok checks that an inner packet of version v starts at p and fits
 * the avail bytes the outer header says it has. */
static __always_inline int inner_check(void *p, void *data_end, __u8 v, __u32 avail)
{
	if (v == 4) {
		__u8 *h = p;
		if (p + 20 > data_end || avail < 20)
			return C_TRUNCATED;
		if ((h[0] >> 4) != 4 || (h[0] & 0xf) < 5)
			return C_BAD_VERSION;
		__u16 tot = ((__u16)h[2] << 8) | h[3];
		if (tot < 20 || tot > avail)
			return C_TRUNCATED;
		return C_MAX;
	}
	__u8 *h = p;
	if (p + 40 > data_end || avail < 40)
		return C_TRUNCATED;
	if ((h[0] >> 4) != 6)
		return C_BAD_VERSION;
	__u16 pl = ((__u16)h[4] << 8) | h[5];
	if ((__u32)pl + 40 > avail)
		return C_TRUNCATED;
	return C_MAX;
}

/* gue parses the GUE header at g (UDP payload of ulen bytes) and returns
 * its length and the inner version, or a drop counter. */
static __always_inline int gue(__u8 *g, void *data_end, __u32 *hlen, __u8 *v)
{
	if ((void *)(g + 4) > data_end)
		return C_TRUNCATED;
	__u8 variant = g[0] >> 6;
	if (variant == 1) {
		/* Variant 1: the IP header itself, no GUE header. */
		*hlen = 0;
		*v = g[0] >> 4;
		if (*v != 4 && *v != 6)
			return C_BAD_VERSION;
		return C_MAX;
	}
	if (variant != 0)
		return C_BAD_VERSION;
	if (g[0] & 0x20)
		return C_BAD_HEADER; /* control message */
	*hlen = 4 + (__u32)(g[0] & 0x1f) * 4;
	if (g[1] == PROTO_IPIP)
		*v = 4;
	else if (g[1] == PROTO_IPV6)
		*v = 6;
	else
		return C_BAD_HEADER;
	return C_MAX;
}

static __always_inline int do_ipv4(struct xdp_md *ctx, __u32 l2len, struct settings *st)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *ip = data + l2len;
	struct addr a;

	if ((void *)(ip + 20) > data_end)
		return count(C_PASSED, XDP_PASS); /* the stack drops it */
	__u8 proto = ip[9];
	if (proto != PROTO_IPIP && !(proto == PROTO_UDP && st->gue))
		return count(C_PASSED, XDP_PASS);
	__be32 dst, src;
	__builtin_memcpy(&dst, ip + 16, 4);
	mapped4(&a, dst);
	if (!known(&decap_locals, &a))
		return count(C_PASSED, XDP_PASS);
	__u32 ihl = (ip[0] & 0xf) * 4;
	if (proto == PROTO_UDP) {
		/* A UDP packet is a tunnel packet only on the GUE port. */
		if (ihl != 20)
			return count(C_PASSED, XDP_PASS);
		__u8 *u = ip + 20;
		if ((void *)(u + 8) > data_end)
			return count(C_PASSED, XDP_PASS);
		if (*(__be16 *)(u + 2) != st->gue_port)
			return count(C_PASSED, XDP_PASS);
	}
	__builtin_memcpy(&src, ip + 12, 4);
	mapped4(&a, src);
	if (!known(&decap_balancers, &a))
		return count(C_NOT_BALANCER, XDP_DROP);
	if ((ip[0] >> 4) != 4)
		return count(C_BAD_VERSION, XDP_DROP);
	if (ihl != 20)
		return count(C_BAD_HEADER, XDP_DROP);
	if (!ipv4_csum_ok((const __u16 *)ip))
		return count(C_BAD_CHECKSUM, XDP_DROP);
	if (ip[6] & 0x3f || ip[7])
		return count(C_BAD_HEADER, XDP_DROP); /* a fragment */
	__u32 tot = ((__u32)ip[2] << 8) | ip[3];
	if (tot < 20 || (void *)ip + tot > data_end)
		return count(C_TRUNCATED, XDP_DROP);
	if (proto == PROTO_IPIP) {
		int r = inner_check(ip + 20, data_end, 4, tot - 20);
		if (r != C_MAX)
			return count(r, XDP_DROP);
		return strip(ctx, l2len, 20, C_IPIP4);
	}
	__u8 *u = ip + 20;
	__u32 ulen = ((__u32)u[4] << 8) | u[5];
	if (ulen < 8 + 4 || ulen > tot - 20)
		return count(C_TRUNCATED, XDP_DROP);
	__u32 glen = 0;
	__u8 v = 0;
	int r = gue(u + 8, data_end, &glen, &v);
	if (r != C_MAX)
		return count(r, XDP_DROP);
	if (v != 4)
		return count(C_BAD_VERSION, XDP_DROP); /* IPv6 in IPv4: not ours */
	if (glen > 128 || 8 + glen > ulen)
		return count(C_TRUNCATED, XDP_DROP);
	r = inner_check(u + 8 + glen, data_end, 4, ulen - 8 - glen);
	if (r != C_MAX)
		return count(r, XDP_DROP);
	return strip(ctx, l2len, 20 + 8 + glen, C_GUE4);
}

static __always_inline int do_ipv6(struct xdp_md *ctx, __u32 l2len, struct settings *st)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *ip = data + l2len;
	struct addr a;

	if ((void *)(ip + 40) > data_end)
		return count(C_PASSED, XDP_PASS);
	__u8 next = ip[6];
	if (next != PROTO_IPV6 && !(next == PROTO_UDP && st->gue))
		return count(C_PASSED, XDP_PASS);
	__builtin_memcpy(&a, ip + 24, 16);
	if (!known(&decap_locals, &a))
		return count(C_PASSED, XDP_PASS);
	if (next == PROTO_UDP) {
		__u8 *u = ip + 40;
		if ((void *)(u + 8) > data_end)
			return count(C_PASSED, XDP_PASS);
		if (*(__be16 *)(u + 2) != st->gue_port)
			return count(C_PASSED, XDP_PASS);
	}
	__builtin_memcpy(&a, ip + 8, 16);
	if (!known(&decap_balancers, &a))
		return count(C_NOT_BALANCER, XDP_DROP);
	if ((ip[0] >> 4) != 6)
		return count(C_BAD_VERSION, XDP_DROP);
	__u32 pl = ((__u32)ip[4] << 8) | ip[5];
	if ((void *)ip + 40 + pl > data_end)
		return count(C_TRUNCATED, XDP_DROP);
	if (next == PROTO_IPV6) {
		int r = inner_check(ip + 40, data_end, 6, pl);
		if (r != C_MAX)
			return count(r, XDP_DROP);
		return strip(ctx, l2len, 40, C_IPIP6);
	}
	__u8 *u = ip + 40;
	__u32 ulen = ((__u32)u[4] << 8) | u[5];
	if (ulen < 8 + 4 || ulen > pl)
		return count(C_TRUNCATED, XDP_DROP);
	__u32 glen = 0;
	__u8 v = 0;
	int r = gue(u + 8, data_end, &glen, &v);
	if (r != C_MAX)
		return count(r, XDP_DROP);
	if (v != 6)
		return count(C_BAD_VERSION, XDP_DROP);
	if (glen > 128 || 8 + glen > ulen)
		return count(C_TRUNCATED, XDP_DROP);
	r = inner_check(u + 8 + glen, data_end, 6, ulen - 8 - glen);
	if (r != C_MAX)
		return count(r, XDP_DROP);
	return strip(ctx, l2len, 40 + 8 + glen, C_GUE6);
}

SEC("xdp")
int xdp_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	__u32 l2len = ETH_HLEN;

	struct settings *st = bpf_map_lookup_elem(&decap_settings, &zero);
	if (!st)
		return XDP_PASS;
	if (data + ETH_HLEN > data_end)
		return count(C_PASSED, XDP_PASS);
	__be16 proto = *(__be16 *)(data + 12);
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		if (data + 18 > data_end)
			return count(C_PASSED, XDP_PASS);
		proto = *(__be16 *)(data + 16);
		l2len = 18;
	}
	if (proto == bpf_htons(ETH_P_IP))
		return do_ipv4(ctx, l2len, st);
	if (proto == bpf_htons(ETH_P_IPV6))
		return do_ipv6(ctx, l2len, st);
	return count(C_PASSED, XDP_PASS);
}

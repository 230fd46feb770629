/* The 64x64 -> 128-bit multiplication the Go side does with bits.Mul64.
 * BPF has only a 64-bit multiply (the low half), so the high half is built
 * from the four products of the 32-bit halves. This is the only definition;
 * the flow hash and the Maglev range reduction both use it. */
#ifndef DSRLB_MUL128_H
#define DSRLB_MUL128_H

#include "common.h"

/* mul128_hi returns the high 64 bits of a*b. */
static __always_inline __u64 mul128_hi(__u64 a, __u64 b)
{
	__u64 a0 = a & 0xffffffff, a1 = a >> 32;
	__u64 b0 = b & 0xffffffff, b1 = b >> 32;
	__u64 p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
	/* Each term is below 2^32, so the sum cannot overflow 64 bits. */
	__u64 mid = (p00 >> 32) + (p01 & 0xffffffff) + (p10 & 0xffffffff);
	return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/* mix folds the 128-bit product: flowtable's mix. */
static __always_inline __u64 mix(__u64 a, __u64 b)
{
	return mul128_hi(a, b) ^ (a * b);
}

/* reduce maps h onto [0, n) by the high half of h*n: scheduler's reduce. */
static __always_inline __u64 reduce(__u64 h, __u64 n)
{
	return mul128_hi(h, n);
}

#endif

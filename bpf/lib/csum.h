/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Internet checksum arithmetic (RFC 1071, incremental update RFC 1624)
 * for programs that write packets directly (XDP). A one's complement sum
 * is byte-order independent, so fields are added as they lie in memory.
 */
#ifndef WEIR_CSUM_H
#define WEIR_CSUM_H

#include "common.h"

static __always_inline __u16 csum_fold64(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* csum_replace32 updates checksum check for a 32-bit field from -> to. */
static __always_inline __u16 csum_replace32(__u16 check, __u32 from, __u32 to)
{
	__u64 s = (__u16)~check;

	s += (__u16)~(from & 0xffff);
	s += (__u16)~(from >> 16);
	s += to & 0xffff;
	s += to >> 16;
	return csum_fold64(s);
}

/* csum_replace16 updates checksum check for a 16-bit field from -> to. */
static __always_inline __u16 csum_replace16(__u16 check, __u16 from, __u16 to)
{
	__u64 s = (__u16)~check;

	s += (__u16)~from;
	s += to;
	return csum_fold64(s);
}

#endif /* WEIR_CSUM_H */

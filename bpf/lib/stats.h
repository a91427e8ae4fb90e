/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Counting helpers every weir program shares. */
#ifndef WEIR_STATS_H
#define WEIR_STATS_H

#include "common.h"
#include "maps.h"

/* count_reason adds one to reason's per-CPU counter (NONE is not counted). */
static __always_inline void count_reason(enum weir_reason reason)
{
	__u32 k = reason;
	__u64 *n;

	if (reason == WEIR_REASON_NONE)
		return;
	n = bpf_map_lookup_elem(&lb4_reasons, &k);
	if (n)
		*n += 1;
}

#endif /* WEIR_STATS_H */

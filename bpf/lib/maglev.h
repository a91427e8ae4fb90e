/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Backend choice for external traffic: a flow hash indexes the service
 * port's Maglev table, which Go computes from the backend set alone, so
 * every node holding the same backends picks the same one for a flow.
 */
#ifndef WEIR_MAGLEV_H
#define WEIR_MAGLEV_H

#include "common.h"
#include "nodeport_maps.h"

/* Slots in every Maglev table: lb4_maglev's value holds this many (Go
 * sets both from Config.MaglevSize). */
volatile const __u32 maglev_m = MAGLEV_M;

static __always_inline __u64 mix64(__u64 h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/*
 * flow_hash hashes a flow's client address, ports and protocol. The
 * destination address is left out on purpose: a client reaching a
 * nodePort through two node addresses is then one flow to the hash, and
 * an external IP announced by every node is anyway the same address.
 */
static __always_inline __u32 flow_hash(const struct ct4_key *t)
{
	__u64 a = ((__u64)t->saddr << 32) | ((__u64)t->sport << 16) | t->dport;

	return (__u32)mix64(a ^ mix64((__u64)t->proto + 0x9e3779b97f4a7c15ULL));
}

/*
 * maglev_slot copies slot idx of svc_id's table into out; false when the
 * port has no table or the slot holds no backend. A table is one hash
 * element, written whole before the kernel links it in, so a lookup finds
 * the old table or the new one. But the kernel may recycle a replaced
 * element for the next update (hash elements are reused without waiting
 * for an RCU grace period), so a reader still holding it could read
 * another port's table: the slot is read in one load first, the header
 * after, and a header naming another port means a fresh lookup.
 */
static __always_inline bool maglev_slot(__u32 svc_id, __u32 idx, struct lb4_mgl_entry *out)
{
	const struct lb4_mgl_table *tbl;
	__u64 raw;
	int try;

	/* Bounds idx for the verifier too: maglev_m is a read-only
	 * constant, and the value holds exactly maglev_m slots. */
	if (idx >= maglev_m)
		return false;
	for (try = 0; try < 2; try++) {
		tbl = bpf_map_lookup_elem(&lb4_maglev, &svc_id);
		if (!tbl)
			return false;
		raw = *(volatile const __u64 *)&tbl->slots[idx];
		asm volatile("" ::: "memory");
		if (*(volatile const __u32 *)&tbl->svc_id != svc_id)
			continue;
		__builtin_memcpy(out, &raw, sizeof(*out));
		return out->addr != 0;
	}
	return false;
}

#endif /* WEIR_MAGLEV_H */

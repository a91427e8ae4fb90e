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

/* The Maglev table size the inner maps were made with (Go sets it). */
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

/* maglev_slot returns the backend in slot idx of svc_id's table, if any. */
static __always_inline const struct lb4_mgl_entry *maglev_slot(__u32 svc_id, __u32 idx)
{
	const struct lb4_mgl_entry *be;
	void *tbl;

	tbl = bpf_map_lookup_elem(&lb4_maglev, &svc_id);
	if (!tbl)
		return NULL;
	be = bpf_map_lookup_elem(tbl, &idx);
	if (!be || !be->addr)
		return NULL;
	return be;
}

#endif /* WEIR_MAGLEV_H */

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection tracking of translated flows: one LRU entry per direction,
 * keyed by the tuple as it arrives, holding the tuple to rewrite it to.
 * Entries age out by LRU eviction only (no TCP state machine): a flow that
 * loses its entry is rehashed to the same backend by Maglev.
 */
#ifndef WEIR_CT_H
#define WEIR_CT_H

#include "common.h"
#include "nodeport_maps.h"

/* SNAT source ports: above Linux's default ephemeral range (32768-60999),
 * so the node's own connections to a backend never collide with them. */
#define NAT_PORT_MIN 61000
#define NAT_PORT_RANGE 4536
#define NAT_PORT_TRIES 8

static __always_inline struct ct4_entry *ct4_lookup(const struct ct4_key *k)
{
	return bpf_map_lookup_elem(&ct4_flows, k);
}

/* ct4_reverse_key is the key of the reply direction of a translated flow. */
static __always_inline void ct4_reverse_key(struct ct4_key *r, const struct ct4_entry *fwd,
					    __u8 proto)
{
	r->saddr = fwd->nat_daddr;
	r->sport = fwd->nat_dport;
	r->daddr = fwd->nat_saddr;
	r->dport = fwd->nat_sport;
	r->proto = proto;
	r->pad[0] = r->pad[1] = r->pad[2] = 0;
}

/*
 * ct4_alloc_snat finds a free source port on addr for a flow to the
 * backend in fwd and claims it by inserting the reply entry rev there
 * (BPF_NOEXIST makes the claim atomic). It fills fwd's source and returns
 * false when every try collided.
 */
static __always_inline bool ct4_alloc_snat(struct ct4_entry *fwd, struct ct4_entry *rev,
					   __u8 proto, __be32 addr, __u32 hash)
{
	struct ct4_key rk;
	int i;

	fwd->nat_saddr = addr;
	for (i = 0; i < NAT_PORT_TRIES; i++) {
		__u16 port = NAT_PORT_MIN + (hash + i * 7919) % NAT_PORT_RANGE;

		fwd->nat_sport = bpf_htons(port);
		ct4_reverse_key(&rk, fwd, proto);
		if (bpf_map_update_elem(&ct4_flows, &rk, rev, BPF_NOEXIST) == 0)
			return true;
	}
	return false;
}

#endif /* WEIR_CT_H */

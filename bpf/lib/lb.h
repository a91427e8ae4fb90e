/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket-level service translation for IPv4: frontend lookup, backend
 * choice (random, or ClientIP affinity), the reverse entry that recvmsg and
 * getpeername use, and the counters. Needs kernel 5.8 (getpeername hooks,
 * netns cookies) and 5.18 (bpf_set_retval in cgroup sock_addr programs).
 */
#ifndef WEIR_LB_H
#define WEIR_LB_H

#include "common.h"
#include "maps.h"
#include "stats.h"

#define NO_SVC_ID 0xffffffffU

/*
 * Runtime configuration, set from Go before loading.
 * host_netns_cookie: the network namespace in which a loopback destination
 * with a nodePort means the node (0: loopback nodePorts are off).
 */
volatile const __u64 host_netns_cookie = 0;

/* How the caller wants a backend picked when no affinity applies. */
enum pick {
	PICK_RANDOM,	/* connect(): once per connection */
	PICK_PER_SOCKET, /* unconnected sendmsg(): stable for a socket */
};

/* Outcome of a forward translation, for the counters. */
struct xlate {
	__u32 svc_id;
	enum weir_reason reason;
};

static __always_inline bool ip4_is_loopback(__be32 addr)
{
	return (bpf_ntohl(addr) >> 24) == 127;
}

static __always_inline const struct lb4_fe *lb4_lookup_frontend(struct bpf_sock_addr *ctx,
								struct lb4_fe_key *key)
{
	const struct lb4_fe *fe;

	fe = bpf_map_lookup_elem(&lb4_frontends, key);
	if (fe)
		return fe;
	/* nodePort on a loopback address, from the node's own namespace */
	if (host_netns_cookie && ip4_is_loopback(key->addr) &&
	    bpf_get_netns_cookie(ctx) == host_netns_cookie) {
		struct lb4_fe_key wild = *key;

		wild.addr = 0;
		return bpf_map_lookup_elem(&lb4_frontends, &wild);
	}
	return NULL;
}

/* A 64-bit mix, so that consecutive socket cookies spread over slots. */
static __always_inline __u32 hash_cookie(__u64 c)
{
	c ^= c >> 33;
	c *= 0xff51afd7ed558ccdULL;
	c ^= c >> 33;
	return (__u32)c;
}

/*
 * lb4_affinity_backend returns the backend this client used last for the
 * service if it is still within the timeout and still in the service's
 * current set at the same slot.
 */
static __always_inline const struct lb4_backend *
lb4_affinity_backend(const struct lb4_affinity_key *akey, const struct lb4_svc *svc, __u64 now)
{
	struct lb4_affinity_entry *a;
	const struct lb4_backend *be;
	struct lb4_slot_key sk = {};

	a = bpf_map_lookup_elem(&lb4_affinity, akey);
	if (!a)
		return NULL;
	if (now - a->last_used > (__u64)svc->affinity_timeout * 1000000000ULL)
		return NULL;
	if (a->slot >= svc->count)
		return NULL;
	sk.svc_id = akey->svc_id;
	sk.slot = a->slot;
	sk.gen = svc->gen;
	be = bpf_map_lookup_elem(&lb4_slots, &sk);
	if (!be || be->addr != a->addr || be->port != a->port)
		return NULL;
	a->last_used = now;
	return be;
}

/*
 * sock4_xlate_fwd translates ctx's destination if it names a service
 * frontend and reports whether it did; x names the service and, when
 * nothing was chosen or something failed on the way, the reason.
 */
static __always_inline bool sock4_xlate_fwd(struct bpf_sock_addr *ctx, enum pick pick,
					    struct xlate *x)
{
	struct lb4_fe_key key = {};
	const struct lb4_fe *fe;
	const struct lb4_backend *be = NULL;
	struct lb4_affinity_key akey = {};
	struct lb4_slot_key sk = {};
	struct lb4_svc svc;
	struct lb4_backend chosen;
	struct lb4_revnat_key rkey = {};
	struct lb4_revnat_entry rval = {};
	__u64 now = 0;
	__be32 named;
	__u32 svc_id;
	__u16 slot = 0;
	bool affinity = false;
	int i;

	x->svc_id = NO_SVC_ID;
	x->reason = WEIR_REASON_NONE;
	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return false;
	named = ctx->user_ip4;
	key.addr = named;
	key.port = (__be16)ctx->user_port;
	key.proto = (__u8)ctx->protocol;
	fe = lb4_lookup_frontend(ctx, &key);
	if (!fe)
		return false;
	svc_id = fe->svc_id;
	x->svc_id = svc_id;

	/*
	 * A second pass covers the one race Go's make-before-break leaves:
	 * the service entry read here was replaced and its slots trimmed
	 * before the slot lookup. The second read sees the new entry.
	 */
	for (i = 0; i < 2; i++) {
		const struct lb4_svc *sp = bpf_map_lookup_elem(&lb4_services, &svc_id);

		if (!sp) {
			x->reason = WEIR_REASON_SVC_MISS;
			return false;
		}
		svc = *sp;
		if (svc.count == 0) {
			x->reason = WEIR_REASON_NO_BACKEND;
			return false;
		}
		affinity = svc.flags & SVC_F_AFFINITY;
		if (affinity) {
			akey.client = bpf_get_netns_cookie(ctx);
			akey.svc_id = svc_id;
			now = bpf_ktime_get_ns();
			be = lb4_affinity_backend(&akey, &svc, now);
			if (be) {
				affinity = false; /* entry refreshed in place */
				break;
			}
		}
		if (pick == PICK_PER_SOCKET)
			slot = hash_cookie(bpf_get_socket_cookie(ctx)) % svc.count;
		else
			slot = bpf_get_prandom_u32() % svc.count;
		sk.svc_id = svc_id;
		sk.slot = slot;
		sk.gen = svc.gen;
		be = bpf_map_lookup_elem(&lb4_slots, &sk);
		if (be)
			break;
	}
	if (!be) {
		x->reason = WEIR_REASON_SLOT_MISS;
		return false;
	}
	chosen = *be;

	if (affinity) {
		struct lb4_affinity_entry aval = {
			.last_used = now,
			.addr = chosen.addr,
			.port = chosen.port,
			.slot = slot,
		};

		if (bpf_map_update_elem(&lb4_affinity, &akey, &aval, BPF_ANY))
			x->reason = WEIR_REASON_AFFINITY_UPDATE;
	}

	rkey.cookie = bpf_get_socket_cookie(ctx);
	rkey.addr = chosen.addr;
	rkey.port = chosen.port;
	rval.addr = named; /* for the wildcard, the loopback address used */
	rval.port = key.port;
	{
		const struct lb4_revnat_entry *cur = bpf_map_lookup_elem(&lb4_revnat, &rkey);

		/* unconnected UDP sends often: write only what changed */
		if (!cur || cur->addr != rval.addr || cur->port != rval.port) {
			if (bpf_map_update_elem(&lb4_revnat, &rkey, &rval, BPF_ANY))
				x->reason = WEIR_REASON_REVNAT_UPDATE;
		}
	}

	ctx->user_ip4 = chosen.addr;
	ctx->user_port = (__u32)chosen.port;
	return true;
}

/* sock4_xlate_rev shows the address the client named instead of the backend. */
static __always_inline void sock4_xlate_rev(struct bpf_sock_addr *ctx)
{
	struct lb4_revnat_key rkey = {};
	const struct lb4_revnat_entry *rv;

	rkey.cookie = bpf_get_socket_cookie(ctx);
	rkey.addr = ctx->user_ip4;
	rkey.port = (__be16)ctx->user_port;
	rv = bpf_map_lookup_elem(&lb4_revnat, &rkey);
	if (!rv)
		return;
	ctx->user_ip4 = rv->addr;
	ctx->user_port = (__u32)rv->port;
}

/*
 * sock4_verdict records the counters of one forward translation and turns
 * it into the hook's verdict. A service without a usable backend refuses
 * at once: the syscall fails with ECONNREFUSED, as an iptables REJECT
 * would make it fail a moment later.
 */
static __always_inline int sock4_verdict(const struct xlate *x, bool translated, bool datagram)
{
	struct lb4_svc_counters *st = NULL;
	bool refuse = !translated && x->svc_id != NO_SVC_ID;

	count_reason(x->reason);
	if (x->svc_id != NO_SVC_ID)
		st = bpf_map_lookup_elem(&lb4_svc_stats, &x->svc_id);
	if (st) {
		if (refuse)
			st->refused += 1;
		else if (datagram)
			st->datagrams += 1;
		else
			st->connects += 1;
	}
	if (refuse) {
		bpf_set_retval(-ECONNREFUSED);
		return SYS_REJECT;
	}
	return SYS_PROCEED;
}

#endif /* WEIR_LB_H */

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection tracking of translated flows: one LRU entry per direction,
 * keyed by the tuple as it arrives, holding the tuple to rewrite it to.
 *
 * Each entry records when a packet last matched it (last_seen) and
 * whether the flow is closing: a TCP FIN or RST in either direction
 * marks both entries (and each direction remembers its own FIN, and an
 * RST both: a flow that sent FIN both ways or was reset is closed, its
 * port reusable after ct_timeout_closed). Nothing sweeps the map; a dead flow is noticed
 * where it costs something:
 *  - ct4_alloc_snat reuses the source port of a dead flow (below), which
 *    is what keeps a busy remote backend from running out of ports:
 *    entries otherwise left only by LRU eviction, so once a backend's
 *    range had carried that many flows nearly every new SYN found no
 *    free port;
 *  - a packet matching a closing entry idle for ct_timeout_closing is a
 *    new flow (np_decide), as the kernel treats a SYN on a TIME_WAIT
 *    tuple.
 * A flow is dead when neither of its entries has seen a packet for
 * ct_timeout_closing (closing), or for ct_timeout_tcp / ct_timeout_udp.
 * Otherwise entries age out by LRU eviction; a flow that loses its entry
 * is rehashed to the same backend by Maglev.
 */
#ifndef WEIR_CT_H
#define WEIR_CT_H

#include "common.h"
#include "nodeport_maps.h"

/* SNAT source ports: every port from 1024 up outside the node's ephemeral
 * range (net.ipv4.ip_local_port_range), as two segments that Go sets at
 * load, [low_first, low_first+low_count) and [high_first,
 * high_first+high_count). The node's own connections take their source
 * ports from the ephemeral range, so they never collide with a
 * translated flow's tuple; a server
 * listening on a port of these segments does not either: a reply entry
 * matches only packets from the backend's service port, which a backend
 * never connects from. Defaults for Linux's default range (32768-60999):
 * 1024-32767 and 61000-65535, 36,280 ports per backend (61000-65535
 * alone, 4,536, capped short connections to one remote backend at
 * ~4,500/s with the 1 s closed timeout).
 * 32 probes: with the ports of dead flows reusable, a probe fails only on
 * a live flow, and at 90% of the range busy 32 probes still find a free
 * port 96.6% of the time (8: 57%). The stride is prime: Go keeps the
 * port count off its multiples, so the probes visit 32 distinct ports. */
volatile const __u32 snat_low_first = 1024;
volatile const __u32 snat_low_count = 31744;
volatile const __u32 snat_high_first = 61000;
volatile const __u32 snat_high_count = 4536;
#define NAT_PORT_STRIDE 7919
#define NAT_PORT_TRIES 32

/* last_seen's tick: 2^24 ns, about 16.8 ms, so an entry is written at
 * most ~60 times a second however fast its flow, and 32 bits last
 * 2.2 years. */
#define CT_TICK_SHIFT 24

/*
 * Idle timeouts in seconds; Go may set them at load (tests set 0).
 * Reference: Linux's nf_conntrack defaults and Cilium's.
 * ct_timeout_closing, 10 s: as nf_conntrack_tcp_timeout_close (after an
 *   RST). The kernel keeps TIME_WAIT 120 s but lets a new SYN on the
 *   tuple take it over at once, which is what reuse does here: the
 *   backend sees a new connection from node:port, as after a client
 *   reconnecting from the same port. 10 s covers the last ACK and
 *   retransmitted FINs; a half-closed flow still moving data in one
 *   direction stays fresh, since both entries are checked.
 * ct_timeout_tcp, 6 h: Cilium's established-TCP lifetime. The kernel's
 *   5 days suits its 64k-port range per destination; here ~36k per
 *   backend. Above Linux's default keepalive time (2 h), so a connection
 *   kept alive by keepalive probes is never taken.
 * ct_timeout_udp, 60 s: Cilium's non-TCP lifetime, between the kernel's
 *   30 s (unreplied) and 120 s (a stream with replies both ways).
 * Only a port that is needed is reclaimed: a quiet flow keeps its entries
 * until a new flow probes its port.
 */
volatile const __u32 ct_timeout_closing = 10;
/* ct_timeout_closed, 1 s: a flow that sent FIN both ways, or was reset,
 * is over but for the last ACK and a retransmitted FIN; after a second
 * its port may carry a new flow (the kernel lets a SYN take a TIME_WAIT
 * tuple at once). With 10 s, 4,536 ports carried ~450 short connections
 * a second to one remote backend; with 1 s, ~4,500 (and 36,280 ports,
 * ~36,000). */
volatile const __u32 ct_timeout_closed = 1;
volatile const __u32 ct_timeout_tcp = 6 * 3600;
volatile const __u32 ct_timeout_udp = 60;

static __always_inline __u32 ct_now(void)
{
	return bpf_ktime_get_coarse_ns() >> CT_TICK_SHIFT;
}

/* ct_ticks converts seconds to ticks (rounding down: within one tick). */
static __always_inline __u32 ct_ticks(__u32 secs)
{
	return ((__u64)secs * 1000000000ULL) >> CT_TICK_SHIFT;
}

static __always_inline struct ct4_entry *ct4_lookup(const struct ct4_key *k)
{
	return bpf_map_lookup_elem(&ct4_flows, k);
}

/* ct4_reverse_key is the key of the reply direction of a translated flow
 * (and, given a reply entry, the key of its forward direction). */
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

/* ct4_touch records a packet matching e at now. */
static __always_inline void ct4_touch(struct ct4_entry *e, __u32 now)
{
	if (e->last_seen != now) /* leave the cache line clean when unchanged */
		e->last_seen = now;
}

/* ct4_closed_idle: e is closing and has been idle for the closing timeout. */
static __always_inline bool ct4_closed_idle(const struct ct4_entry *e, __u32 now)
{
	return (e->flags & CT_F_CLOSING) && now - e->last_seen >= ct_ticks(ct_timeout_closing);
}

/*
 * ct4_mark_closing marks e and its other direction closing, on a TCP FIN
 * or RST. The flag is set with a plain store: a lost race with another
 * CPU writing the same byte only delays it to the flow's next FIN.
 */
static __always_inline void ct4_mark_closing(struct ct4_entry *e, __u8 proto, bool rst)
{
	__u8 mine = CT_F_CLOSING | (rst ? CT_F_RST : CT_F_FIN);
	__u8 theirs = CT_F_CLOSING | (rst ? CT_F_RST : 0);
	struct ct4_entry *o;
	struct ct4_key k;

	if ((e->flags & mine) != mine)
		e->flags |= mine;
	ct4_reverse_key(&k, e, proto);
	o = bpf_map_lookup_elem(&ct4_flows, &k);
	if (o && (o->flags & theirs) != theirs)
		o->flags |= theirs;
}

/*
 * ct4_reclaim takes the port whose reply entry rev (at key rk) belongs to
 * a dead flow. The idle time is the flow's: the newer last_seen of rev and
 * of its forward entry, so a one-way flow (UDP with no replies) is live
 * while its client sends. The claim is a compare-and-swap of rev's
 * last_seen to now: of two CPUs probing the same dead port one wins, and
 * the other then sees a fresh entry. The winner deletes the old flow's
 * forward entry when it still points at this port, so a late packet of
 * the old client cannot be translated onto the new flow, and then
 * replaces rev by deleting it and inserting the new one (BPF_NOEXIST, as
 * a fresh claim).
 */
static __always_inline bool ct4_reclaim(struct ct4_entry *rev, const struct ct4_key *rk,
					const struct ct4_entry *nrev, __u8 proto, __u32 now)
{
	struct ct4_entry *fwd;
	struct ct4_key fk;
	__u32 rseen = rev->last_seen, seen = rseen, timeout;
	bool closing = rev->flags & CT_F_CLOSING;
	bool closed = rev->flags & CT_F_RST;

	if (!(rev->flags & CT_F_REPLY))
		return false; /* not a flow's reply side: never ours to take */
	ct4_reverse_key(&fk, rev, proto);
	fwd = bpf_map_lookup_elem(&ct4_flows, &fk);
	if (fwd && fwd->nat_saddr == rk->daddr && fwd->nat_sport == rk->dport &&
	    fwd->nat_daddr == rk->saddr && fwd->nat_dport == rk->sport) {
		closing |= fwd->flags & CT_F_CLOSING;
		closed |= (fwd->flags & CT_F_RST) || ((fwd->flags & CT_F_FIN) && (rev->flags & CT_F_FIN));
		if (now - fwd->last_seen < now - seen)
			seen = fwd->last_seen;
	} else {
		fwd = NULL; /* evicted, or reused by a newer flow of that client */
	}
	if (closed) /* never longer than a half-closed flow's */
		timeout = ct_timeout_closed < ct_timeout_closing ? ct_timeout_closed : ct_timeout_closing;
	else if (closing)
		timeout = ct_timeout_closing;
	else if (proto == IPPROTO_TCP)
		timeout = ct_timeout_tcp;
	else
		timeout = ct_timeout_udp;
	if (now - seen < ct_ticks(timeout))
		return false;
	if (__sync_val_compare_and_swap(&rev->last_seen, rseen, now) != rseen)
		return false;
	if (fwd)
		bpf_map_delete_elem(&ct4_flows, &fk);
	bpf_map_delete_elem(&ct4_flows, rk);
	return bpf_map_update_elem(&ct4_flows, rk, nrev, BPF_NOEXIST) == 0;
}

/* The state of one ct4_alloc_snat, shared with its bpf_loop callback. */
struct ct4_snat_probe {
	struct ct4_entry fwd;
	struct ct4_entry rev;
	__u32 hash;
	__u32 now;
	__u8 proto;
	bool ok;
};

/* ct4_snat_try is probe i of ct4_alloc_snat: 1 stops the loop. */
static long ct4_snat_try(__u64 i, void *ctx)
{
	struct ct4_snat_probe *s = ctx;
	struct ct4_entry *old;
	struct ct4_key rk;
	__u32 n = snat_low_count + snat_high_count, idx;
	__u16 port;

	if (!n)
		return 1;
	idx = (s->hash + (__u32)i * NAT_PORT_STRIDE) % n;
	port = idx < snat_low_count ? snat_low_first + idx : snat_high_first + (idx - snat_low_count);

	s->fwd.nat_sport = bpf_htons(port);
	ct4_reverse_key(&rk, &s->fwd, s->proto);
	if (bpf_map_update_elem(&ct4_flows, &rk, &s->rev, BPF_NOEXIST) == 0) {
		s->ok = true;
		return 1;
	}
	old = bpf_map_lookup_elem(&ct4_flows, &rk);
	if (old && ct4_reclaim(old, &rk, &s->rev, s->proto, s->now)) {
		s->ok = true;
		return 1;
	}
	return 0;
}

/*
 * ct4_alloc_snat finds a free source port on addr for a flow to the
 * backend in fwd and claims it by inserting the reply entry rev there
 * (BPF_NOEXIST makes the claim atomic), or by taking over the port of a
 * dead flow (ct4_reclaim). It fills fwd's source and returns false when
 * every try met a live flow. The probes run under bpf_loop (5.17), whose
 * callback the verifier checks once: unrolled or as a bounded loop, its
 * cost grew with the square of the tries (tc ingress 25k instructions
 * verified at 8 tries, 296k at 32; XDP 42k and 413k of the 1M limit).
 */
static __always_inline bool ct4_alloc_snat(struct ct4_entry *fwd, struct ct4_entry *rev,
					   __u8 proto, __be32 addr, __u32 hash, __u32 now)
{
	struct ct4_snat_probe s = {.hash = hash, .now = now, .proto = proto};

	fwd->nat_saddr = addr;
	s.fwd = *fwd;
	s.rev = *rev;
	bpf_loop(NAT_PORT_TRIES, ct4_snat_try, &s, 0);
	fwd->nat_sport = s.fwd.nat_sport;
	return s.ok;
}

#endif /* WEIR_CT_H */

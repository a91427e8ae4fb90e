/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The per-packet service decision for traffic on the node's uplink,
 * written once for TC and XDP: conntrack first; on a miss, a packet from
 * outside to a NodePort, externalIP or load-balancer IP frontend gets a
 * backend (ClientIP affinity, else Maglev), a conntrack entry for each
 * direction, and SNAT to the node when the backend lives behind the uplink
 * (another node; externalTrafficPolicy Cluster). A packet from outside to
 * a ClusterIP (a router or host that routes the service CIDR via this
 * node) is translated the same way, its backend chosen among the socket
 * LB's slots (see np_pick_slot). A local backend sees the client address.
 * Conntrack hits refresh the entry's last_seen and note TCP FIN/RST, so
 * the ports of dead flows can be reused (ct.h).
 * The caller rewrites the packet as the verdict says.
 * Needs bpf_fib_lookup (4.18) and, for TC, bpf_redirect_neigh (5.10).
 */
#ifndef WEIR_NODEPORT_H
#define WEIR_NODEPORT_H

#include <linux/if_ether.h>
#include "common.h"
#include "maps.h"
#include "nodeport_maps.h"
#include "stats.h"
#include "parse.h"
#include "ct.h"
#include "maglev.h"

#ifndef AF_INET
#define AF_INET 2
#endif

#define NP_NO_SVC 0xffffffffU

/*
 * Runtime configuration, set from Go before loading.
 * uplink_ifindex: the interface the programs are attached to; a backend
 *   whose route leaves through it is remote.
 * snat_addr: the node address remote backends see as the client.
 */
volatile const __u32 uplink_ifindex = 0;
volatile const __be32 snat_addr = 0;

enum np_verdict {
	NP_PASS,    /* not a translated flow: leave it alone */
	NP_NAT,	    /* rewrite to r->nat, then let the stack route it */
	NP_NAT_FWD, /* rewrite to r->nat, then send it out r->fib.ifindex */
	NP_REJECT,  /* answer ICMP port unreachable: no backend */
	NP_DROP,
};

struct np_result {
	struct ct4_entry nat;
	struct bpf_fib_lookup fib;
	__u32 svc_id;
	enum weir_reason reason;
	int fib_rc;
	bool new_flow;
};

/* np_route looks up where a packet rewritten to r->nat goes. */
static __always_inline enum np_verdict np_route(void *ctx, const struct pkt4 *p,
						struct np_result *r, __be32 dst)
{
	__builtin_memset(&r->fib, 0, sizeof(r->fib));
	r->fib.family = AF_INET;
	r->fib.l4_protocol = p->t.proto;
	r->fib.tot_len = p->tot_len;
	r->fib.ifindex = uplink_ifindex;
	r->fib.ipv4_src = r->nat.nat_saddr;
	r->fib.ipv4_dst = dst;
	r->fib_rc = bpf_fib_lookup(ctx, &r->fib, sizeof(r->fib), 0);
	if (r->fib_rc == BPF_FIB_LKUP_RET_SUCCESS || r->fib_rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return NP_NAT_FWD;
	r->reason = WEIR_REASON_FIB;
	return NP_DROP;
}

/*
 * np_pick chooses a backend of svc_id for the flow t: the one this client
 * used last while its affinity holds, else the flow's Maglev slot.
 */
static __always_inline bool np_pick(const struct ct4_key *t, __u32 svc_id,
				    const struct lb4_svc *svc, struct lb4_mgl_entry *out)
{
	struct lb4_mgl_entry be;
	struct np_affinity_key ak = {.client = t->saddr, .svc_id = svc_id};
	struct np_affinity_entry *a;
	__u32 idx = flow_hash(t) % (maglev_m ? maglev_m : 1);
	__u64 now = 0;

	if (svc->flags & SVC_F_AFFINITY) {
		now = bpf_ktime_get_ns();
		a = bpf_map_lookup_elem(&np_affinity, &ak);
		if (a && now - a->last_used <= (__u64)svc->affinity_timeout * 1000000000ULL) {
			if (maglev_slot(svc_id, a->idx, &be) && be.addr == a->addr && be.port == a->port) {
				a->last_used = now;
				*out = be;
				return true;
			}
		}
	}
	if (!maglev_slot(svc_id, idx, &be))
		return false;
	*out = be;
	if (svc->flags & SVC_F_AFFINITY) {
		struct np_affinity_entry av = {
			.last_used = now, .addr = be.addr, .port = be.port, .idx = idx};

		if (bpf_map_update_elem(&np_affinity, &ak, &av, BPF_ANY))
			count_reason(WEIR_REASON_AFFINITY_UPDATE);
	}
	return true;
}

/*
 * np_pick_slot chooses a backend for a flow from outside to a ClusterIP:
 * the one this client used last while its affinity holds, else slot
 * flow_hash % count of the socket LB's current set. That set is the one
 * pods get (internalTrafficPolicy applies, as in kube-proxy's KUBE-SVC
 * chain that serves this traffic), and it costs no Maglev table: tables
 * are 8 KiB per port (Go keeps them to ports with external frontends),
 * while a ClusterIP routed from outside is the rare case. Conntrack keeps a flow on its backend; a flow that
 * lost its entry hashes to the same slot while the set is unchanged.
 * Unlike Maglev the choice is not the same on every node, as with
 * kube-proxy's random choice. Two passes, as in the socket LB, cover a
 * service entry replaced and its old slots trimmed between the reads.
 * Affinity entries share np_affinity with the Maglev path; idx is the
 * slot here, and an entry is reused only when that slot of the current
 * set still holds its backend, so a client using both frontends of one
 * port at worst loses its stickiness, never gets a stale backend.
 */
static __always_inline bool np_pick_slot(const struct ct4_key *t, __u32 svc_id,
					 struct lb4_mgl_entry *out)
{
	struct np_affinity_key ak = {.client = t->saddr, .svc_id = svc_id};
	const struct lb4_backend *be = NULL;
	struct lb4_slot_key sk = {.svc_id = svc_id};
	struct np_affinity_entry *a;
	const struct lb4_svc *sp;
	bool affinity = false;
	__u64 now = 0;
	__u16 slot = 0;
	int i;

	for (i = 0; i < 2; i++) {
		sp = bpf_map_lookup_elem(&lb4_services, &svc_id);
		if (!sp || sp->count == 0)
			return false;
		sk.gen = sp->gen;
		affinity = sp->flags & SVC_F_AFFINITY;
		if (affinity) {
			now = bpf_ktime_get_ns();
			a = bpf_map_lookup_elem(&np_affinity, &ak);
			if (a && now - a->last_used <= (__u64)sp->affinity_timeout * 1000000000ULL &&
			    a->idx < sp->count) {
				sk.slot = a->idx;
				be = bpf_map_lookup_elem(&lb4_slots, &sk);
				if (be && be->addr == a->addr && be->port == a->port) {
					a->last_used = now;
					out->addr = be->addr;
					out->port = be->port;
					return true;
				}
			}
		}
		slot = flow_hash(t) % sp->count;
		sk.slot = slot;
		be = bpf_map_lookup_elem(&lb4_slots, &sk);
		if (be)
			break;
	}
	if (!be)
		return false;
	out->addr = be->addr;
	out->port = be->port;
	if (affinity) {
		struct np_affinity_entry av = {
			.last_used = now, .addr = be->addr, .port = be->port, .idx = slot};

		if (bpf_map_update_elem(&np_affinity, &ak, &av, BPF_ANY))
			count_reason(WEIR_REASON_AFFINITY_UPDATE);
	}
	return true;
}

/* np_new_flow translates the first packet of a flow to a service frontend. */
static __always_inline enum np_verdict np_new_flow(void *ctx, const struct pkt4 *p,
						   struct np_result *r)
{
	struct lb4_fe_key fk = {.addr = p->t.daddr, .port = p->t.dport, .proto = p->t.proto};
	const struct lb4_fe *fe;
	const struct lb4_svc *svc;
	struct lb4_mgl_entry be;
	struct ct4_entry rev = {};
	struct ct4_key rk;
	bool remote, external, picked;
	__u32 now = ct_now();

	fe = bpf_map_lookup_elem(&lb4_frontends, &fk);
	if (!fe || !(fe->flags & (FE_F_NODEPORT | FE_F_EXTERNAL | FE_F_CLUSTERIP)))
		return NP_PASS; /* the nodePort wildcard is loopback, never on the wire */
	/* A port's external frontends use its Maglev table (the set under
	 * externalTrafficPolicy); its ClusterIP uses the socket LB's set. */
	external = fe->flags & (FE_F_NODEPORT | FE_F_EXTERNAL);
	r->svc_id = fe->svc_id;
	svc = bpf_map_lookup_elem(&lb4_services, &r->svc_id);
	if (!svc) {
		r->reason = WEIR_REASON_SVC_MISS;
		return NP_REJECT;
	}
	if (external)
		picked = np_pick(&p->t, r->svc_id, svc, &be);
	else
		picked = np_pick_slot(&p->t, r->svc_id, &be);
	if (!picked) {
		/* As kube-proxy: no endpoint at all is refused; endpoints
		 * elsewhere under externalTrafficPolicy Local are dropped. A
		 * ClusterIP refuses whenever its set is empty, as the socket
		 * LB does for pods. */
		if (svc->count == 0) {
			r->reason = WEIR_REASON_NO_BACKEND;
			return NP_REJECT;
		}
		if (!external) {
			r->reason = WEIR_REASON_SLOT_MISS;
			return NP_REJECT;
		}
		r->reason = WEIR_REASON_NO_LOCAL_BACKEND;
		return NP_DROP;
	}

	r->nat.nat_saddr = p->t.saddr;
	r->nat.nat_sport = p->t.sport;
	r->nat.nat_daddr = be.addr;
	r->nat.nat_dport = be.port;
	r->nat.svc_id = r->svc_id;
	r->nat.flags = 0;
	r->nat.created = bpf_ktime_get_ns();
	r->nat.last_seen = now;

	/*
	 * Where does the backend live? Behind the uplink means another node:
	 * SNAT to the node, or its reply would go straight to the client.
	 * A local backend keeps the client address, for a ClusterIP from
	 * outside too, where kube-proxy masquerades sources outside the
	 * cluster CIDR: its mark is set before it knows whether the endpoint
	 * is local. Here it is known, and a local backend's reply must come
	 * back through this node (its gateway) and out the uplink, whose
	 * egress restores the frontend; masquerading it would instead need a
	 * program on the pods' side to catch replies to the node address.
	 */
	if (np_route(ctx, p, r, be.addr) == NP_NAT_FWD)
		remote = r->fib.ifindex == uplink_ifindex;
	else if (r->fib_rc == BPF_FIB_LKUP_RET_NOT_FWDED) {
		remote = false; /* the node's own address (host-network backend) */
		r->reason = WEIR_REASON_NONE;
	} else
		return NP_DROP;

	rev.nat_saddr = p->t.daddr;
	rev.nat_sport = p->t.dport;
	rev.nat_daddr = p->t.saddr;
	rev.nat_dport = p->t.sport;
	rev.svc_id = r->svc_id;
	rev.flags = CT_F_REPLY;
	rev.created = r->nat.created;
	rev.last_seen = now;
	if (remote) {
		if (!snat_addr) {
			r->reason = WEIR_REASON_NAT_PORTS;
			return NP_DROP;
		}
		r->nat.flags = CT_F_SNAT;
		rev.flags |= CT_F_SNAT;
		if (!ct4_alloc_snat(&r->nat, &rev, p->t.proto, snat_addr, flow_hash(&p->t), now)) {
			r->reason = WEIR_REASON_NAT_PORTS;
			return NP_DROP;
		}
	} else {
		ct4_reverse_key(&rk, &r->nat, p->t.proto);
		if (bpf_map_update_elem(&ct4_flows, &rk, &rev, BPF_ANY)) {
			r->reason = WEIR_REASON_CT_UPDATE;
			return NP_DROP;
		}
	}
	if (bpf_map_update_elem(&ct4_flows, &p->t, &r->nat, BPF_ANY)) {
		ct4_reverse_key(&rk, &r->nat, p->t.proto);
		bpf_map_delete_elem(&ct4_flows, &rk);
		r->reason = WEIR_REASON_CT_UPDATE;
		return NP_DROP;
	}
	r->new_flow = true;
	return remote ? NP_NAT_FWD : NP_NAT;
}

/*
 * np_decide says what to do with a parsed packet. from_outside is true on
 * the uplink's ingress, where new flows start; egress only follows
 * conntrack (the replies of local backends that kept the client address).
 * A hit refreshes the entry's last_seen; a TCP FIN or RST marks the flow
 * closing. A closing entry idle for ct_timeout_closing is a miss: the
 * packet starts a new flow (or, a reply, is not ours), so a closed flow's
 * entries stop translating once its close has had time to finish.
 */
static __always_inline enum np_verdict np_decide(void *ctx, const struct pkt4 *p,
						 bool from_outside, struct np_result *r)
{
	struct ct4_entry *ct;
	__u32 now;

	r->svc_id = NP_NO_SVC;
	r->reason = WEIR_REASON_NONE;
	r->new_flow = false;
	r->fib_rc = 0;
	ct = ct4_lookup(&p->t);
	if (ct) {
		/* SNATed flows enter and leave through the uplink's ingress;
		 * met on egress they are the node's own traffic. */
		if ((ct->flags & CT_F_SNAT) && !from_outside)
			return NP_PASS;
		now = ct_now();
		if (!ct4_closed_idle(ct, now)) {
			ct4_touch(ct, now);
			if (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
				ct4_mark_closing(ct, p->t.proto, p->tcp_flags & TCP_FLAG_RST);
			r->nat = *ct;
			r->svc_id = ct->svc_id;
			if (!(r->nat.flags & CT_F_SNAT))
				return NP_NAT;
			return np_route(ctx, p, r, r->nat.nat_daddr);
		}
	}
	if (!from_outside)
		return NP_PASS;
	return np_new_flow(ctx, p, r);
}

/* np_account records one packet's verdict in the counters. */
static __always_inline void np_account(const struct np_result *r, enum np_verdict v, __u32 len)
{
	struct np_svc_counters *st;
	struct np_backend_counters *bc;
	struct np_backend_key bk = {};

	count_reason(r->reason);
	if (r->svc_id == NP_NO_SVC)
		return;
	st = bpf_map_lookup_elem(&np_svc_stats, &r->svc_id);
	if (st) {
		switch (v) {
		case NP_NAT:
		case NP_NAT_FWD:
			st->packets += 1;
			st->bytes += len;
			st->flows += r->new_flow;
			break;
		case NP_REJECT:
			st->refused += 1;
			break;
		case NP_DROP:
			st->dropped += 1;
			break;
		default:
			break;
		}
	}
	if ((v != NP_NAT && v != NP_NAT_FWD) || (r->nat.flags & CT_F_REPLY))
		return;
	bk.addr = r->nat.nat_daddr;
	bk.port = r->nat.nat_dport;
	bc = bpf_map_lookup_elem(&np_backend_stats, &bk);
	if (bc) {
		bc->flows += r->new_flow;
		bc->packets += 1;
	} else {
		struct np_backend_counters n = {.flows = r->new_flow, .packets = 1};

		bpf_map_update_elem(&np_backend_stats, &bk, &n, BPF_NOEXIST);
	}
}

#endif /* WEIR_NODEPORT_H */

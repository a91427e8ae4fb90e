// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Per-packet service NAT on the node's uplink (tcx ingress and egress) for
 * traffic no socket hook saw: external clients to NodePort, externalIP and
 * load-balancer frontends, packets from outside routed to a ClusterIP via
 * this node, and the replies of their flows. Non-service
 * traffic goes on untouched to the next program (TCX_NEXT).
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/nodeport_maps.h"
#include "lib/nodeport.h"
#include "lib/nat.h"

char __license[] SEC("license") = "Dual BSD/GPL";

/* Emit BTF for the enums Go reads (bpf2go -type). */
const enum ct4_flags *btf_ct4_flags __attribute__((unused));
const enum weir_reason *btf_weir_reason __attribute__((unused));

/* Enough linear data for Ethernet, IPv4 with options and a TCP header. */
#define NP_PULL_LEN (ETH_HLEN + 60 + 20)

static __always_inline int tc_nodeport(struct __sk_buff *skb, bool from_outside)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct np_result r = {};
	enum np_verdict v;
	struct pkt4 p = {};
	int ret = TC_ACT_UNSPEC;

	if (data + NP_PULL_LEN > data_end && skb->len > data_end - data) {
		bpf_skb_pull_data(skb, skb->len < NP_PULL_LEN ? skb->len : NP_PULL_LEN);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}
	switch (parse4(data, data_end, &p)) {
	case PARSE_OK:
		break;
	case PARSE_MALFORMED:
		count_reason(WEIR_REASON_MALFORMED);
		return TC_ACT_UNSPEC;
	case PARSE_FRAGMENT:
		count_reason(WEIR_REASON_FRAGMENT);
		return TC_ACT_UNSPEC;
	default:
		return TC_ACT_UNSPEC;
	}

	v = np_decide(skb, &p, from_outside, &r);
	switch (v) {
	case NP_PASS:
		return TC_ACT_UNSPEC;
	case NP_NAT:
		ret = tc_nat4(skb, &p, &r.nat) ? TC_ACT_SHOT : TC_ACT_OK;
		break;
	case NP_NAT_FWD:
		if (tc_dec_ttl(skb)) {
			r.reason = WEIR_REASON_TTL;
			v = NP_DROP;
			ret = TC_ACT_SHOT;
			break;
		}
		ret = tc_nat4(skb, &p, &r.nat) ? TC_ACT_SHOT : tc_forward(skb, &r);
		break;
	case NP_REJECT:
		if (tc_reject4(skb, &p) == 0) {
			ret = bpf_redirect(uplink_ifindex, 0);
		} else {
			r.reason = WEIR_REASON_REJECT_FAIL;
			v = NP_DROP;
			ret = TC_ACT_SHOT;
		}
		break;
	case NP_DROP:
		ret = TC_ACT_SHOT;
		break;
	}
	if (ret == TC_ACT_SHOT && v != NP_DROP) {
		r.reason = WEIR_REASON_CT_UPDATE; /* a rewrite helper failed */
		v = NP_DROP;
	}
	np_account(&r, v, skb->len);
	return ret;
}

SEC("tcx/ingress")
int weir_tc_ingress(struct __sk_buff *skb)
{
	return tc_nodeport(skb, true);
}

SEC("tcx/egress")
int weir_tc_egress(struct __sk_buff *skb)
{
	return tc_nodeport(skb, false);
}

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The NodePort / load-balancer (and ClusterIP from outside) fast path at
 * XDP on the node's uplink.
 * It shares the decision (and conntrack) with the TC programs and takes
 * only what it can finish itself: a local backend is DNATed and passed to
 * the stack; a remote backend is NATed and sent back out with XDP_TX when
 * the neighbour is known. Everything else (refusals, unresolved
 * neighbours, malformed packets) is passed untouched for TC to handle,
 * which finds the conntrack entry made here.
 *
 * Checksums are updated incrementally: a frame whose sender left a
 * partial checksum (tx offload on a veth peer) stays partial.
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/nodeport_maps.h"
#include "lib/nodeport.h"
#include "lib/nat.h"

char __license[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int weir_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct np_result r = {};
	struct pkt4 p = {};
	enum np_verdict v;
	int ret = XDP_PASS;

	if (parse4(data, data_end, &p) != PARSE_OK)
		return XDP_PASS; /* TC counts what it cannot parse */

	v = np_decide(ctx, &p, true, &r);
	switch (v) {
	case NP_NAT:
		if (xdp_nat4(ctx, &p, &r.nat))
			return XDP_PASS;
		break;
	case NP_NAT_FWD:
		if (r.fib_rc != BPF_FIB_LKUP_RET_SUCCESS || r.fib.ifindex != uplink_ifindex)
			return XDP_PASS; /* TC resolves the neighbour or redirects */
		if (xdp_dec_ttl(ctx))
			return XDP_PASS; /* TC drops and counts it */
		if (xdp_nat4(ctx, &p, &r.nat))
			return XDP_PASS;
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		if (data + ETH_HLEN > data_end)
			return XDP_PASS;
		__builtin_memcpy(data, r.fib.dmac, ETH_ALEN);
		__builtin_memcpy(data + ETH_ALEN, r.fib.smac, ETH_ALEN);
		ret = XDP_TX;
		break;
	case NP_DROP:
		ret = XDP_DROP;
		break;
	default: /* NP_PASS; NP_REJECT is built by TC */
		return XDP_PASS;
	}
	np_account(&r, v, data_end - data);
	return ret;
}

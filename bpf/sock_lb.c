// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket-level service load balancing, attached to a node's cgroup v2
 * subtree: connect() and unconnected UDP sendmsg() to a service frontend go
 * straight to a backend, so established connections cost nothing per
 * packet; recvmsg() and getpeername() show the service address back.
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/lb.h"

char __license[] SEC("license") = "Dual BSD/GPL";

/* Emit BTF for the enums Go reads (bpf2go -type); no map names them. */
const enum weir_reason *btf_weir_reason __attribute__((unused));
const enum lb4_fe_flags *btf_lb4_fe_flags __attribute__((unused));
const enum lb4_svc_flags *btf_lb4_svc_flags __attribute__((unused));

SEC("cgroup/connect4")
int weir_connect4(struct bpf_sock_addr *ctx)
{
	struct xlate x;
	bool ok = sock4_xlate_fwd(ctx, PICK_RANDOM, &x);

	return sock4_verdict(&x, ok, false);
}

SEC("cgroup/sendmsg4")
int weir_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct xlate x;
	bool ok = sock4_xlate_fwd(ctx, PICK_PER_SOCKET, &x);

	return sock4_verdict(&x, ok, true);
}

SEC("cgroup/recvmsg4")
int weir_recvmsg4(struct bpf_sock_addr *ctx)
{
	sock4_xlate_rev(ctx);
	return SYS_PROCEED;
}

SEC("cgroup/getpeername4")
int weir_getpeername4(struct bpf_sock_addr *ctx)
{
	sock4_xlate_rev(ctx);
	return SYS_PROCEED;
}

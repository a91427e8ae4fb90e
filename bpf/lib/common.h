/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Types and constants shared by every weir BPF program. */
#ifndef WEIR_COMMON_H
#define WEIR_COMMON_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/errno.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Verdicts of cgroup sock_addr programs. */
#define SYS_REJECT 0
#define SYS_PROCEED 1

/*
 * Why a translation was refused or degraded. Indexes the per-CPU reason
 * counters (lb4_reasons); Go reads the names from the generated enum.
 */
enum weir_reason {
	WEIR_REASON_NONE = 0,	    /* not counted */
	WEIR_REASON_NO_BACKEND,	    /* service has no usable backend: refused */
	WEIR_REASON_SVC_MISS,	    /* frontend without service entry: refused */
	WEIR_REASON_SLOT_MISS,	    /* backend slot vanished under two updates: refused */
	WEIR_REASON_REVNAT_UPDATE,  /* reverse entry not written: peer shows the backend */
	WEIR_REASON_AFFINITY_UPDATE, /* affinity entry not written: next pick is random */
	/* Per-packet service NAT (TC and XDP on the uplink). */
	WEIR_REASON_NO_LOCAL_BACKEND, /* externalTrafficPolicy Local, none here: dropped */
	WEIR_REASON_CT_UPDATE,	      /* conntrack entry not written: dropped */
	WEIR_REASON_NAT_PORTS,	      /* no free SNAT port for the backend: dropped */
	WEIR_REASON_FIB,	      /* no route to the backend or the client: dropped */
	WEIR_REASON_MALFORMED,	      /* truncated or bad IPv4/L4 header: passed untouched */
	WEIR_REASON_FRAGMENT,	      /* IPv4 fragment: passed untouched, not balanced */
	WEIR_REASON_REJECT_FAIL,      /* ICMP unreachable not built: dropped instead */
	WEIR_REASON_TTL,	      /* TTL would expire on a packet BPF forwards: dropped */
	WEIR_REASON_MAX,
};

#endif /* WEIR_COMMON_H */

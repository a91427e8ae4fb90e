/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Service load-balancing maps (IPv4), defined apart from the logic that
 * reads them. Every map is pinned by name under the node's directory
 * (/sys/fs/bpf/weir/<node>/), so an agent restart keeps them. The
 * capacities below are defaults: the Go loader sets max_entries from its
 * configuration before loading.
 *
 * A service port has one id. Its frontends (ClusterIP, externalIPs,
 * node IPs + nodePort, the nodePort wildcard) all point at that id; the id's
 * service entry holds the backend count and the generation of its slots.
 * Replacing a backend set writes the new slots (in the other generation when
 * a backend leaves), then flips the one service entry, then trims the old
 * slots: a lookup sees the old set or the new one, never a mix.
 */
#ifndef WEIR_MAPS_H
#define WEIR_MAPS_H

#include "common.h"

#ifndef LB4_FRONTENDS_MAX
#define LB4_FRONTENDS_MAX 65536
#endif
#ifndef LB4_SERVICES_MAX
#define LB4_SERVICES_MAX 65536
#endif
#ifndef LB4_SLOTS_MAX
#define LB4_SLOTS_MAX 262144
#endif
#ifndef LB4_REVNAT_MAX
#define LB4_REVNAT_MAX 262144
#endif
/* Fixed, with room for reasons to come, so a new one keeps the pinned map. */
#define WEIR_REASONS_MAX 64

#ifndef LB4_AFFINITY_MAX
#define LB4_AFFINITY_MAX 65536
#endif

/* Frontend flags (lb4_fe.flags); an enum so that Go gets them from BTF. */
enum lb4_fe_flags {
	FE_F_CLUSTERIP = 0x1, /* the service's ClusterIP: the port's identity */
	FE_F_EXTERNAL = 0x2,  /* an externalIP or a load-balancer ingress IP */
	FE_F_NODEPORT = 0x4,  /* a node IP and the nodePort */
	FE_F_WILDCARD = 0x8,  /* 0.0.0.0 and the nodePort: loopback on the node */
};

/* Service flags (lb4_svc.flags). */
enum lb4_svc_flags {
	SVC_F_AFFINITY = 0x1, /* sessionAffinity ClientIP, for affinity_timeout s */
};

/* A destination that a client may name: address, port, IP protocol. */
struct lb4_fe_key {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct lb4_fe {
	__u32 svc_id;
	__u16 flags;
	__u16 pad;
};

/* One service port's live backend set; replaced whole, never edited. */
struct lb4_svc {
	__u16 count; /* usable backends: slots 0..count-1 of gen */
	__u8 gen;    /* generation (0 or 1) of the slots in use */
	__u8 flags;
	__u32 affinity_timeout; /* seconds; with SVC_F_AFFINITY */
};

struct lb4_slot_key {
	__u32 svc_id;
	__u16 slot;
	__u8 gen;
	__u8 pad;
};

struct lb4_backend {
	__be32 addr;
	__be16 port;
	__u16 pad;
};

/* A translated socket and the backend it was sent to. */
struct lb4_revnat_key {
	__u64 cookie;
	__be32 addr;
	__be16 port;
	__u16 pad;
};

/* The address the client named, shown back by recvmsg and getpeername. */
struct lb4_revnat_entry {
	__be32 addr;
	__be16 port;
	__u16 pad;
};

/* Client (network namespace cookie) and service port. */
struct lb4_affinity_key {
	__u64 client;
	__u32 svc_id;
	__u32 pad;
};

struct lb4_affinity_entry {
	__u64 last_used; /* bpf_ktime_get_ns */
	__be32 addr;	 /* backend chosen, checked against the slot on reuse */
	__be16 port;
	__u16 slot;
};

/* Per service port and CPU. */
struct lb4_svc_counters {
	__u64 connects;	 /* connect() translated (TCP and connected UDP) */
	__u64 datagrams; /* unconnected UDP sendmsg translated */
	__u64 refused;	 /* connect() or sendmsg refused: no backend */
};

/* Frontend address/port/protocol -> service port id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lb4_fe_key);
	__type(value, struct lb4_fe);
	__uint(max_entries, LB4_FRONTENDS_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_frontends SEC(".maps");

/* Service port id -> backend count and slot generation; no prealloc, so an
 * update swaps the whole entry under RCU and readers never see it torn. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct lb4_svc);
	__uint(max_entries, LB4_SERVICES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_services SEC(".maps");

/* {service port id, slot, generation} -> backend address and port. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lb4_slot_key);
	__type(value, struct lb4_backend);
	__uint(max_entries, LB4_SLOTS_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_slots SEC(".maps");

/* {socket cookie, backend} -> address the client named (recvmsg, getpeername). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct lb4_revnat_key);
	__type(value, struct lb4_revnat_entry);
	__uint(max_entries, LB4_REVNAT_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_revnat SEC(".maps");

/* {client netns cookie, service port id} -> backend last chosen (ClientIP). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct lb4_affinity_key);
	__type(value, struct lb4_affinity_entry);
	__uint(max_entries, LB4_AFFINITY_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_affinity SEC(".maps");

/* Service port id -> per-CPU translation counters; sized like lb4_services. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct lb4_svc_counters);
	__uint(max_entries, LB4_SERVICES_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_svc_stats SEC(".maps");

/* enum weir_reason -> per-CPU count of refused or degraded translations. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, WEIR_REASONS_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_reasons SEC(".maps");

#endif /* WEIR_MAPS_H */

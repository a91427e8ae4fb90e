/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps of the per-packet service path (TC and XDP on the node's uplink),
 * defined apart from the logic that reads them. They sit beside the
 * socket-LB maps (maps.h) in the node's pin directory; the frontends,
 * services and reasons maps are the socket LB's own, shared by the loader.
 * Capacities are defaults: the Go loader sets them from its configuration.
 */
#ifndef WEIR_NODEPORT_MAPS_H
#define WEIR_NODEPORT_MAPS_H

#include "common.h"
#include "maps.h"

#ifndef CT4_MAX
#define CT4_MAX 262144
#endif
/* Maglev table size: a prime, set from Go (Config.MaglevSize). */
#ifndef MAGLEV_M
#define MAGLEV_M 1021
#endif
#ifndef NP_AFFINITY_MAX
#define NP_AFFINITY_MAX 65536
#endif
#ifndef NP_BACKEND_STATS_MAX
#define NP_BACKEND_STATS_MAX 65536
#endif

/* Conntrack entry flags (ct4_entry.flags). */
enum ct4_flags {
	CT_F_REPLY = 0x1, /* the entry matches the reply direction (backend to client) */
	CT_F_SNAT = 0x2,  /* source rewritten to the node: the packet is sent by BPF, not the stack */
	CT_F_CLOSING = 0x4, /* a TCP FIN or RST was seen in either direction */
	CT_F_FIN = 0x8,     /* this direction sent a FIN */
	CT_F_RST = 0x10,    /* an RST was seen in either direction */
};

/* A flow's 5-tuple as seen on the wire, before translation. */
struct ct4_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

/* What a packet matching the key is rewritten to. */
struct ct4_entry {
	__be32 nat_saddr;
	__be32 nat_daddr;
	__be16 nat_sport;
	__be16 nat_dport;
	__u32 svc_id;
	__u8 flags;
	__u8 pad[3];
	/* When a packet last matched this entry, in ticks of 2^24 ns (about
	 * 16.8 ms) of bpf_ktime_get_coarse_ns, truncated to 32 bits (wraps
	 * after 2.2 years; idle times are differences modulo 2^32). Held in
	 * what was padding, so a map pinned by an earlier build keeps its
	 * layout (its entries read as seen at tick 0 until their next packet). */
	__u32 last_seen;
	__u64 created; /* bpf_ktime_get_ns */
};

/* One slot of a service port's Maglev table: a backend (addr 0: none).
 * Eight bytes, aligned to eight, so a slot is read in one load. */
struct lb4_mgl_entry {
	__be32 addr;
	__be16 port;
	__u16 pad;
} __attribute__((aligned(8)));

/* A service port's Maglev table, the value of lb4_maglev: a header naming
 * the port it was written for, then maglev_m slots. The map's value size
 * is set from Go (8 + 8 * maglev_m), so the slots are not a C array. */
struct lb4_mgl_table {
	__u32 svc_id;
	__u32 pad;
	struct lb4_mgl_entry slots[0];
};

/* A complete BTF type for bpf2go (lb4_maglev carries no value type). */
const struct lb4_mgl_entry *btf_lb4_mgl_entry __attribute__((unused));

/* ClientIP affinity of external clients: client address and service port. */
struct np_affinity_key {
	__be32 client;
	__u32 svc_id;
};

struct np_affinity_entry {
	__u64 last_used; /* bpf_ktime_get_ns */
	__be32 addr;	 /* backend chosen, checked against table[idx] on reuse */
	__be16 port;
	__u16 pad;
	__u32 idx; /* the Maglev slot it was found in */
	__u32 pad2;
};

/* Per service port and CPU, for packets the uplink programs handled. */
struct np_svc_counters {
	__u64 packets; /* translated, both directions */
	__u64 bytes;
	__u64 flows;	/* conntrack entries created */
	__u64 refused;	/* answered with ICMP port unreachable: no backend */
	__u64 dropped;	/* dropped: no local backend, no SNAT port, no route */
};

struct np_backend_key {
	__be32 addr;
	__be16 port;
	__u16 pad;
};

/* Per backend and CPU. */
struct np_backend_counters {
	__u64 flows;   /* new flows sent to it */
	__u64 packets; /* packets to it, after the first */
};

/* 5-tuple -> translation, both directions of every translated flow. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct4_key);
	__type(value, struct ct4_entry);
	__uint(max_entries, CT4_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct4_flows SEC(".maps");

/* Service port id -> its Maglev table (struct lb4_mgl_table), for ports
 * with external frontends. A new table replaces the old one whole in one
 * update: a hash update links a fully written element in place of the
 * old one and, unlike a map-in-map update, waits for no RCU grace period
 * (issue #4). Elements are allocated on update (no prealloc): a table is
 * 8 KiB at the default size, and most service ports have none. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct lb4_mgl_table) + MAGLEV_M * sizeof(struct lb4_mgl_entry));
	__uint(max_entries, LB4_SERVICES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_maglev SEC(".maps");

/* {external client address, service port id} -> backend last chosen. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct np_affinity_key);
	__type(value, struct np_affinity_entry);
	__uint(max_entries, NP_AFFINITY_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} np_affinity SEC(".maps");

/* Service port id -> per-CPU counters of the uplink path. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct np_svc_counters);
	__uint(max_entries, LB4_SERVICES_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} np_svc_stats SEC(".maps");

/* Backend -> per-CPU counters (LRU: backends come and go without Go). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__type(key, struct np_backend_key);
	__type(value, struct np_backend_counters);
	__uint(max_entries, NP_BACKEND_STATS_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} np_backend_stats SEC(".maps");

#endif /* WEIR_NODEPORT_MAPS_H */

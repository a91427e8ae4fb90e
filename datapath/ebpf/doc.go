// Package ebpf is weir's default data plane: Services implemented with
// eBPF programs and maps instead of iptables.
//
// It holds two program families over shared maps. The socket-level load
// balancer: cgroup/connect4,
// sendmsg4, recvmsg4 and getpeername4 programs (bpf/sock_lb.c) attached to
// the node's cgroup v2 subtree translate a connect() or an unconnected UDP
// send to a ClusterIP, externalIP, load-balancer IP or node IP:nodePort into
// a backend address, so established connections cost nothing per packet,
// and show the service address back to the client. A service port without
// a usable backend fails connect() and sendmsg() at once with ECONNREFUSED.
//
// The uplink path (Config.Uplink; bpf/tc_nodeport.c, bpf/xdp_nodeport.c)
// serves what no socket hook sees: packets from outside the node to a
// NodePort, externalIP or load-balancer IP frontend, and packets from
// outside routed to a ClusterIP via the node (a router or host with a
// route to the service CIDR; kube-proxy serves them from PREROUTING).
// tcx ingress on the uplink looks the flow up in conntrack; a new flow to
// an external frontend gets a backend from ClientIP affinity or the
// service port's Maglev table (computed in Go from the backend set alone,
// so every node picks the same backend for a flow), a new flow to a
// ClusterIP one from ClientIP affinity or slot flow-hash % count of the
// socket LB's set (the one pods get, under internalTrafficPolicy; no
// table, see below), then an entry per direction, and DNAT. Traffic of
// the node's own processes and pods never reaches the uplink's ingress:
// the socket LB has translated it already. A backend behind the uplink
// (another node; externalTrafficPolicy Cluster) is also SNATed to the
// uplink's address on a port from 1024 up outside the node's ephemeral
// range (read at start from net.ipv4.ip_local_port_range: 1024-32767 and
// 61000-65535 by default, so no node-local connection collides) and sent
// out with bpf_redirect / bpf_redirect_neigh after a FIB lookup, and its
// replies are translated back in BPF too (the stack would drop them as
// martians). Those ports per backend are why conntrack tracks liveness (issue
// #4; bpf/lib/ct.h): each entry keeps when a packet last matched it and
// whether a TCP FIN or RST was seen either way. A new flow's port search
// (32 probes, under bpf_loop) takes over the port of a dead flow, one
// closing and idle 10 s or idle 6 h (TCP) or 60 s (UDP), deleting that
// flow's forward entry too; a closing entry idle 10 s no longer
// translates. Entries only left by LRU eviction before, so after ~4,500
// flows to one remote backend nearly every SYN was dropped (nat_ports):
// about 200 new connections a second instead of 10k. The timeouts are
// .rodata constants (ct_timeout_*), set to 0 by tests.
// A local backend keeps the client address (with either policy, as Cilium
// does; kube-proxy masquerades under Cluster, and for a ClusterIP masquerades
// sources outside the cluster CIDR); its replies get their source restored
// on the uplink's egress. No backend at all: ICMP port
// unreachable (the client's connect or send fails at once); backends only
// elsewhere under externalTrafficPolicy Local: dropped, as kube-proxy
// does. XDP (Config.XDP native or generic; off by default) runs the same
// decision first and finishes what it can alone: local backends DNATed
// and passed up, remote ones NATed and sent back out with XDP_TX; the
// rest goes on to TC, which finds the conntrack entry XDP made. Malformed
// packets and fragments pass untouched (counted); other traffic goes on
// to the next tcx program unchanged.
//
// It owns, per node, the maps and links pinned under
// /sys/fs/bpf/weir/<node>/ (maps by name, links under links/), which is
// what lets an agent restart keep every service and connection: Open
// reuses them, swaps programs inside the pinned links and reconciles its
// view from the maps. Map layout (bpf/lib/maps.h):
//
//	lb4_frontends  HASH      {addr, port, proto}             -> {svc id, flags}
//	lb4_services   HASH      svc id                          -> {count, gen, flags, affinity timeout}
//	lb4_slots      HASH      {svc id, slot, gen}             -> backend {addr, port}
//	lb4_revnat     LRU_HASH  {socket cookie, backend}        -> address the client named
//	lb4_affinity   LRU_HASH  {client netns cookie, svc id}   -> {backend, slot, last used}
//	lb4_svc_stats  PERCPU_ARRAY svc id                       -> {connects, datagrams, refused}
//	lb4_reasons    PERCPU_ARRAY enum weir_reason             -> count
//
// and for the uplink path (bpf/lib/nodeport_maps.h; the socket LB's
// frontends, services and reasons maps are shared by map replacement):
//
//	ct4_flows        LRU_HASH  5-tuple as it arrives             -> tuple to rewrite it to, flags (reply, snat, closing), svc id, last seen
//	lb4_maglev       HASH      svc id                            -> {svc id, M backends {addr, port}}
//	np_affinity      LRU_HASH  {client address, svc id}          -> {backend, Maglev slot, last used}
//	np_svc_stats     PERCPU_ARRAY svc id                         -> {packets, bytes, flows, refused, dropped}
//	np_backend_stats LRU_PERCPU_HASH backend                     -> {flows, packets}
//
// Maglev tables exist only for service ports with an external frontend
// and a usable backend, so ClusterIP-only ports cost nothing, though the
// uplink serves their ClusterIP from the slots: a table per port would
// hold 8 KiB for each of them and cost a Maglev computation per change.
// The price is that a ClusterIP flow from outside is not placed alike on
// every node (conntrack keeps it where it started, as kube-proxy's does).
//
// A table is one lb4_maglev value (BPF_F_NO_PREALLOC; its size set from
// MaglevSize at load), replaced whole with one update: the kernel links a
// fully written element in place of the old and, unlike the map of maps
// of earlier builds, waits for no RCU grace period (about 12 ms per update
// on Linux 6.18: a full Apply of 10,000 NodePort services × 3 endpoints
// took 1m52s and one endpoint change 7–15 ms; now 0.8 s and under 0.2 ms,
// measured by TestMaglevTablesAtScale). A replaced element may be reused
// at once, so the program reads its slot in one load and then checks the
// table's header names its port (maglev_slot). A map of maps pinned by an
// earlier build is replaced at Open; the next Apply rewrites the tables.
//
// Uplink links are pinned under links/ as tc_ingress, tc_egress and
// xdp_native or xdp_generic. ReadConntrack reads ct4_flows (`weir dp
// conntrack` shows each entry's flags, age and idle time).
//
// A backend set is replaced make-before-break (see planSlots): new slots
// first, then one atomic update of the service entry, then the trim, so a
// lookup sees the old set or the new one, never a mix.
//
// Apply takes the whole desired state; ApplyServices (services.go) takes
// the services that changed and writes only their ports, so one endpoint
// changed costs a few map writes whatever the number of services.
// Collector (metrics.go) exposes the counters to Prometheus at scrape
// time; ReadPinned (pinned.go) reads a node's pins read-only for
// `weir dp` (package inspect).
//
// It must not attach at the root of a cgroup hierarchy (that would capture
// every process on the machine), and it never touches pins of other
// program families in the node's directory. The generated
// {socklb,tcnp,xdpnp}_bpfel.{go,o} are committed (go generate rebuilds
// them with clang). The uplink path needs Linux 6.6 (tcx links).
package ebpf

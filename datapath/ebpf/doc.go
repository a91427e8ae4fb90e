// Package ebpf is weir's default data plane: Services implemented with
// eBPF programs and maps instead of iptables.
//
// Today it holds the socket-level load balancer: cgroup/connect4,
// sendmsg4, recvmsg4 and getpeername4 programs (bpf/sock_lb.c) attached to
// the node's cgroup v2 subtree translate a connect() or an unconnected UDP
// send to a ClusterIP, externalIP, load-balancer IP or node IP:nodePort into
// a backend address, so established connections cost nothing per packet,
// and show the service address back to the client. A service port without
// a usable backend fails connect() and sendmsg() at once with ECONNREFUSED.
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
// program families in the node's directory. The generated socklb_bpfel.go
// and socklb_bpfel.o are committed (go generate rebuilds them with clang).
package ebpf

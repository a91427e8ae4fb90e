// Package endpointslice is weir's EndpointSlice controller: for every
// Service with a selector it writes the discovery.k8s.io/v1
// EndpointSlices that tell each node's data plane which pods may take
// traffic, and keeps the legacy core/v1 Endpoints object in step, with
// Kubernetes' semantics.
//
// Each endpoint is one pod (IPv4 only): its address, nodeName, zone (from
// the node's topology.kubernetes.io/zone label), targetRef, hostname (for
// pods whose subdomain names the Service) and the conditions Kubernetes
// sets: ready (Ready and not terminating, or always with
// publishNotReadyAddresses), serving (Ready, terminating or not) and
// terminating (deletionTimestamp set). Pods without an IPv4 address and
// pods that have finished (Succeeded, Failed) are left out. Target ports
// are resolved per pod, so pods that resolve a named port differently
// land in different slices, and a pod without the named port is left out
// of that port (as Kubernetes does).
//
// The desired state is a pure function, reconcile (service, pods, nodes,
// existing slices) → slices to create, update and delete, which keeps
// churn low: a change rewrites only the slices whose content changed,
// new endpoints go into slices that are being rewritten anyway (or into
// one slice that has room) before a new slice is made, a slice that would
// be deleted is reused for one that would be created, and no slice holds
// more than 100 endpoints. A Service with no endpoints keeps one empty
// placeholder slice, as in Kubernetes.
//
// The legacy Endpoints object follows Kubernetes' endpoints controller:
// ready pods in addresses, others in notReadyAddresses, terminating pods
// left out (unless publishNotReadyAddresses), one subset per set of
// ports, truncated at 1,000 addresses (and annotated over-capacity). It
// is labelled endpointslice.kubernetes.io/skip-mirror=true as Kubernetes
// does, and managed-by as the slices are, which is how the controller
// tells its own from a hand-written one.
//
// Ownership. The controller owns the slices labelled
// endpointslice.kubernetes.io/managed-by=endpointslice-controller.weir.dev
// (each also labelled kubernetes.io/service-name and owner-referenced to
// its Service) and the Endpoints objects of Services with a selector. It
// must not touch any other slice: a Service without a selector (or of
// type ExternalName) is left to its users, who write its slices and
// Endpoints by hand; the controller only removes what it wrote itself
// when a Service loses its selector or goes away.
//
// Reads come from client-go informers (Services, Pods, Nodes, managed
// slices, Endpoints); work is queued per Service key in two rate-limited
// workqueues, one for slices and one for Endpoints, and reconciled
// level-triggered, so a slow write of a big Endpoints object never holds
// up the slices data planes wait for. What the controller writes is
// remembered until its own informer has seen it, so the next pass over a
// Service never decides from a cache older than its own writes (no
// duplicate slices, no conflicts against itself), and the echo of its
// own write queues no pass. Resource versions are compared as numbers,
// which holds for weir's server (they are etcd revisions).
//
// Metrics: weir_endpointslice_ready_to_write_seconds is the time from the
// controller's pod informer receiving a Ready condition change of a pod
// already in the slices to the write of the slice that shows it being
// answered (a pod that only now becomes an endpoint is no readiness
// change of the slices); weir_endpointslice_writes_total counts writes.
// Each written slice and Endpoints object carries the
// endpoints.kubernetes.io/last-change-trigger-time annotation, as in
// Kubernetes: when the earliest change it carries was seen, so a data
// plane can measure its programming latency end to end.
//
// It runs on one server at a time (the elected leader) and talks to the
// server only through the API, in JSON.
package endpointslice

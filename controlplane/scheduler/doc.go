// Package scheduler is weir's pod scheduler: it gives every pod without a
// node the best node that can hold it, or says why none can, as
// kube-scheduler's default profile does.
//
// The decision is Schedule, a pure function over a Snapshot (nodes, the
// pods bound to them, Services) and one pod. It filters nodes in
// kube-scheduler's order — Ready condition, spec.unschedulable,
// NoSchedule/NoExecute taints, nodeSelector and required node affinity,
// host ports, resource requests (cpu, memory, ephemeral storage,
// extended resources, pod count) against allocatable minus what bound
// pods request — and scores the rest by least requested resources,
// balanced allocation, preferred node affinity, PreferNoSchedule taints
// and spreading of pods that share a controller or a Service. A pod that
// fits nowhere gets a FitError worded as Kubernetes words it
// ("0/3 nodes are available: 1 node(s) didn't match Pod's node
// affinity/selector, 2 Insufficient cpu.").
//
// Scheduler is the loop around it. One pod informer (every pod not yet
// finished) feeds a cache of what each node holds and a queue of pods to
// place, ordered by priority then age; pods that fit nowhere wait, with
// per-pod back-off (1 s doubling to 10 s), until a node is added or
// changes, a bound pod goes away or the pod itself changes. One goroutine
// decides, one pod at a time, against the cache; a decided pod is
// assumed on its node at once, so the next decision counts it before the
// watch reports the binding, and a few goroutines bind concurrently
// through the pods/binding subresource. A pod that fits nowhere gets
// PodScheduled=False (reason Unschedulable) and a FailedScheduling
// Warning event.
//
// DrainPlan is the pure half of `weir drain`: which pods of a node to
// evict, with kubectl's warnings and errors for DaemonSet pods, pods
// without a controller and pods with local storage.
//
// The scheduler owns spec.nodeName of pods whose schedulerName is empty
// or "default-scheduler" (set only through pods/binding), the PodScheduled
// condition while a pod is unbound, and FailedScheduling events. It must
// not move or evict bound pods, touch pods of other schedulers, or write
// anything but through the API. It runs on one server at a time (the
// elected leader) and speaks JSON to the server.
package scheduler

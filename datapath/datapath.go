// Package datapath is the seam between the service proxy and the kernel:
// the desired services and endpoints of one node go in through Apply, pod
// interfaces come and go through AttachPod and DetachPod, and an
// implementation (datapath/ebpf by default, datapath/iptables as the
// kube-proxy baseline) makes the kernel match. It holds the shared input
// types and the pure conversion from API objects; it touches no kernel
// state itself.
package datapath

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Dataplane makes one node's kernel forward Services as State describes.
// Implementations are safe for concurrent use; Apply calls are serialised
// by the caller. On construction an implementation reconciles what it
// finds in the kernel (pinned maps and links, rules) with its first Apply,
// so an agent restart disturbs no established connection.
type Dataplane interface {
	// Implementations may keep the Services handed to Apply and
	// ApplyServices: callers must not modify them afterwards.
	//
	// Apply makes the kernel match st, the whole desired state: a service
	// not in st is removed. It is for start-up reconciliation and periodic
	// resyncs; ApplyServices carries the changes in between.
	Apply(ctx context.Context, st *State) error
	// ApplyServices changes some services of the state last applied:
	// each of changed replaces the service of the same key (all its
	// ports), each of deleted is removed, and every other service stays
	// as it is, so the cost follows what changed rather than how many
	// services there are. node replaces the node's name and addresses (a
	// change there reprograms what depends on them). Before the first
	// Apply the state it changes is empty. The result equals an Apply of
	// the resulting State.
	ApplyServices(ctx context.Context, node NodeInfo, changed []Service, deleted []ServiceKey) error
	// AttachPod and DetachPod follow pod interfaces so per-packet programs
	// and redirect targets track pods.
	AttachPod(ctx context.Context, p Pod) error
	DetachPod(ctx context.Context, p Pod) error
	// Close releases user-space resources; pinned kernel state stays.
	Close() error
}

// State is the desired service state of one node.
type State struct {
	// NodeName is the node this state is for (externalTrafficPolicy and
	// internalTrafficPolicy Local select endpoints on it).
	NodeName string
	// NodeIPs are the node's addresses: NodePorts answer on them.
	NodeIPs  []netip.Addr
	Services []Service
}

// NodeInfo is what a State says about the node itself.
type NodeInfo struct {
	Name string
	IPs  []netip.Addr
}

// Node returns st's node part.
func (st *State) Node() NodeInfo { return NodeInfo{Name: st.NodeName, IPs: st.NodeIPs} }

// Equal reports whether n and o name the same node with the same
// addresses in the same order.
func (n NodeInfo) Equal(o NodeInfo) bool { return n.Name == o.Name && slices.Equal(n.IPs, o.IPs) }

// ServiceKey names a Service.
type ServiceKey struct{ Namespace, Name string }

func (k ServiceKey) String() string { return k.Namespace + "/" + k.Name }

// ServiceState is a State kept as a map, for implementations and callers
// that apply changes service by service. Not safe for concurrent use.
type ServiceState struct {
	Node     NodeInfo
	Services map[ServiceKey]Service
}

// NewServiceState indexes st (nil: empty).
func NewServiceState(st *State) *ServiceState {
	ss := &ServiceState{Services: map[ServiceKey]Service{}}
	if st != nil {
		ss.Node = st.Node()
		for _, s := range st.Services {
			ss.Services[s.ServiceKey()] = s
		}
	}
	return ss
}

// Update applies a change as ApplyServices describes it.
func (ss *ServiceState) Update(node NodeInfo, changed []Service, deleted []ServiceKey) {
	ss.Node = node
	for _, k := range deleted {
		delete(ss.Services, k)
	}
	for _, s := range changed {
		ss.Services[s.ServiceKey()] = s
	}
}

// State returns the whole state, services sorted by key as FromAPI
// sorts them. The services share their slices with ss.
func (ss *ServiceState) State() *State {
	st := &State{NodeName: ss.Node.Name, NodeIPs: ss.Node.IPs, Services: make([]Service, 0, len(ss.Services))}
	for _, s := range ss.Services {
		st.Services = append(st.Services, s)
	}
	sort.Slice(st.Services, func(i, j int) bool { return st.Services[i].Key() < st.Services[j].Key() })
	return st
}

// Service is one Service's frontends and backends.
type Service struct {
	Namespace, Name string
	Type            corev1.ServiceType
	// ClusterIP is invalid for headless and ExternalName services, which
	// the data plane does not program.
	ClusterIP       netip.Addr
	ExternalIPs     []netip.Addr
	LoadBalancerIPs []netip.Addr
	// AffinityTimeout > 0 means sessionAffinity ClientIP.
	AffinityTimeout      time.Duration
	ExternalTrafficLocal bool
	InternalTrafficLocal bool
	Ports                []Port
}

// Port is one service port and the endpoints behind it.
type Port struct {
	Name     string
	Protocol corev1.Protocol
	Port     uint16
	NodePort uint16 // 0 when the service has none
	Backends []Backend
}

// Backend is one endpoint address and target port.
type Backend struct {
	Addr     netip.Addr
	Port     uint16
	NodeName string
	// Ready endpoints take new connections; Serving-but-Terminating ones
	// only when no ready one remains.
	Ready, Serving, Terminating bool
}

// Pod is a pod's host-side network attachment.
type Pod struct {
	Namespace, Name string
	// HostIfIndex and HostIfName name the host end of the pod's veth.
	HostIfIndex int
	HostIfName  string
	Addr        netip.Addr
	MAC         net.HardwareAddr
}

// Key names a service in maps and chains.
func (s *Service) Key() string { return s.Namespace + "/" + s.Name }

// ServiceKey is s's key.
func (s *Service) ServiceKey() ServiceKey { return ServiceKey{s.Namespace, s.Name} }

// Usable returns the backends that may take new connections, following
// Kubernetes' rules: the ready ones; if none, the serving terminating ones.
// local restricts the choice to backends on node.
func (p *Port) Usable(node string, local bool) []Backend {
	var ready, serving []Backend
	for _, b := range p.Backends {
		if local && b.NodeName != node {
			continue
		}
		switch {
		case b.Ready && !b.Terminating:
			ready = append(ready, b)
		case b.Serving && b.Terminating:
			serving = append(serving, b)
		}
	}
	if len(ready) > 0 {
		return ready
	}
	return serving
}

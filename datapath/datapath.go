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
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Dataplane makes one node's kernel forward Services as State describes.
// Implementations are safe for concurrent use; Apply calls are serialised
// by the caller. On construction an implementation reconciles what it
// finds in the kernel (pinned maps and links, rules) with its first Apply,
// so an agent restart disturbs no established connection.
type Dataplane interface {
	// Apply makes the kernel match st. A change of one endpoint touches
	// only what changed.
	Apply(ctx context.Context, st *State) error
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

package scheduler

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// NodeInfo is one node and what the pods bound to it (and the pods the
// scheduler assumed onto it) take of it. Build it with NewNodeInfo and
// AddPod; it is not safe for concurrent use, and Schedule only reads it.
type NodeInfo struct {
	node *corev1.Node
	// allocatable is what the node offers pods; allowedPods is its pod
	// count limit.
	allocatable resources
	allowedPods int64
	// requested and nonZeroRequested sum the pods' podInfo.req and
	// podInfo.nonZero.
	requested, nonZeroRequested resources
	pods                        int64
	// ports counts the pods holding each host port.
	ports map[hostPort]int
	// spread counts the pods of each spread group (podInfo.spread).
	spread map[string]int
}

// NewNodeInfo returns the NodeInfo of a node holding no pods. A nil node
// stands for one the scheduler has not seen yet but pods are bound to.
func NewNodeInfo(node *corev1.Node) *NodeInfo {
	n := &NodeInfo{}
	n.setNode(node)
	return n
}

// Node is the node; nil while only its pods are known.
func (n *NodeInfo) Node() *corev1.Node { return n.node }

// Name is the node's name, "" while only its pods are known.
func (n *NodeInfo) Name() string {
	if n.node == nil {
		return ""
	}
	return n.node.Name
}

func (n *NodeInfo) setNode(node *corev1.Node) {
	n.node = node
	if node == nil {
		n.allocatable, n.allowedPods = resources{}, 0
		return
	}
	// A node that reports no allocatable (some hand-written Node
	// objects) offers its capacity.
	alloc := node.Status.Allocatable
	if len(alloc) == 0 {
		alloc = node.Status.Capacity
	}
	n.allocatable = resourcesOf(alloc)
	n.allowedPods = alloc.Pods().Value()
}

// AddPod charges the node for a pod bound to it. services are the
// Services the pod's spreading counts (those of its namespace).
func (n *NodeInfo) AddPod(pod *corev1.Pod, services []*corev1.Service) {
	n.add(newPodInfo(pod, services))
}

func (n *NodeInfo) add(p *podInfo) {
	n.requested.add(p.req)
	n.nonZeroRequested.add(p.nonZero)
	n.pods++
	for _, hp := range p.ports {
		if n.ports == nil {
			n.ports = map[hostPort]int{}
		}
		n.ports[hp]++
	}
	for _, k := range p.spread {
		if n.spread == nil {
			n.spread = map[string]int{}
		}
		n.spread[k]++
	}
}

// remove undoes add with the same podInfo.
func (n *NodeInfo) remove(p *podInfo) {
	n.requested.sub(p.req)
	n.nonZeroRequested.sub(p.nonZero)
	n.pods--
	for _, hp := range p.ports {
		if n.ports[hp]--; n.ports[hp] <= 0 {
			delete(n.ports, hp)
		}
	}
	for _, k := range p.spread {
		if n.spread[k]--; n.spread[k] <= 0 {
			delete(n.spread, k)
		}
	}
}

// portsFree reports whether none of want clashes with a port the node's
// pods hold: the same protocol and port on the same address, or on any
// address when either side binds every address.
func (n *NodeInfo) portsFree(want []hostPort) bool {
	for _, w := range want {
		for held := range n.ports {
			if held.protocol == w.protocol && held.port == w.port &&
				(held.ip == "" || w.ip == "" || held.ip == w.ip) {
				return false
			}
		}
	}
	return true
}

// Snapshot is what one scheduling decision reads: the nodes with what
// their pods take, and the Services that spread pods. Schedule does not
// change it.
type Snapshot struct {
	// Nodes are the candidate nodes, in the order ties are broken
	// (NewSnapshot sorts them by name).
	Nodes []*NodeInfo
	// Services group pods for spreading, with their controllers.
	Services []*corev1.Service
	// TieBreak picks among equally good nodes: the (TieBreak mod
	// count)-th best in Nodes order. A loop advances it per decision so
	// ties rotate instead of always landing on the first node.
	TieBreak uint64
}

// NewSnapshot builds a Snapshot: every node, charged for the pods bound
// to it. Pods not bound to one of the nodes, and finished pods, are left
// out.
func NewSnapshot(nodes []*corev1.Node, pods []*corev1.Pod, services []*corev1.Service) *Snapshot {
	s := &Snapshot{Services: services}
	byName := make(map[string]*NodeInfo, len(nodes))
	for _, node := range nodes {
		ni := NewNodeInfo(node)
		byName[node.Name] = ni
		s.Nodes = append(s.Nodes, ni)
	}
	slices.SortFunc(s.Nodes, func(a, b *NodeInfo) int { return strings.Compare(a.Name(), b.Name()) })
	for _, pod := range pods {
		if ni := byName[pod.Spec.NodeName]; ni != nil && !terminal(pod) {
			ni.AddPod(pod, services)
		}
	}
	return s
}

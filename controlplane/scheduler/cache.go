package scheduler

import (
	"maps"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// cache is the loop's view of the cluster: each node with the pods bound
// to it, plus the pods the loop assumed onto a node while their binding
// is under way, and the Services that spread pods. The informers write
// it; the deciding goroutine decides under its lock, so a decision sees
// one consistent state and the next decision sees the pod just placed.
// Safe for concurrent use.
type cache struct {
	mu sync.Mutex
	// nodes holds every node by name, and placeholders (NodeInfo without
	// a node) for names pods are bound to before their Node is seen.
	nodes map[string]*NodeInfo
	// sorted lists the nodes that have a Node, by name; nil when it must
	// be rebuilt (a node came or went).
	sorted   []*NodeInfo
	pods     map[types.UID]*cachedPod
	services map[string]map[string]*corev1.Service // namespace → name
}

type cachedPod struct {
	info *podInfo
	node string
	// assumed: placed by this loop, not yet seen bound by the informer.
	assumed bool
}

func newCache() *cache {
	return &cache{
		nodes:    map[string]*NodeInfo{},
		pods:     map[types.UID]*cachedPod{},
		services: map[string]map[string]*corev1.Service{},
	}
}

// decide runs Schedule for pod over the current state and, when a node
// fits, assumes the pod onto it before the lock is released. A pod the
// cache already places (assumed, or seen bound while it waited) is not
// decided again: placed is true and node is where it is.
func (c *cache) decide(pod *corev1.Pod, tieBreak uint64) (node string, placed bool, fe *FitError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cp := c.pods[pod.UID]; cp != nil {
		return cp.node, true, nil
	}
	if c.sorted == nil {
		c.sorted = make([]*NodeInfo, 0, len(c.nodes))
		for _, n := range c.nodes {
			if n.node != nil {
				c.sorted = append(c.sorted, n)
			}
		}
		slices.SortFunc(c.sorted, func(a, b *NodeInfo) int { return strings.Compare(a.Name(), b.Name()) })
	}
	info := newPodInfo(pod, c.servicesLocked(pod.Namespace))
	node, fe = schedule(c.sorted, info, tieBreak)
	if fe != nil {
		return "", false, fe
	}
	c.placeLocked(&cachedPod{info: info, node: node, assumed: true})
	return node, false, nil
}

// forget drops an assumed pod whose binding failed; a pod the informer
// has seen bound stays. It reports whether it dropped anything.
func (c *cache) forget(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cp := c.pods[uid]; cp != nil && cp.assumed {
		c.removeLocked(uid)
		return true
	}
	return false
}

// setPod records a bound pod as the informer reports it: it confirms an
// assumed pod, or moves a pod whose node or requests changed.
func (c *cache) setPod(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(pod.UID)
	c.placeLocked(&cachedPod{info: newPodInfo(pod, c.servicesLocked(pod.Namespace)), node: pod.Spec.NodeName})
}

// removePod drops a pod that was deleted or finished; it reports whether
// the pod held a place on a node.
func (c *cache) removePod(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.removeLocked(uid)
}

// placeLocked charges cp's node for it; the pod must not be placed yet.
func (c *cache) placeLocked(cp *cachedPod) {
	n := c.nodes[cp.node]
	if n == nil {
		n = NewNodeInfo(nil)
		c.nodes[cp.node] = n
	}
	n.add(cp.info)
	c.pods[cp.info.pod.UID] = cp
}

func (c *cache) removeLocked(uid types.UID) bool {
	cp := c.pods[uid]
	if cp == nil {
		return false
	}
	delete(c.pods, uid)
	if n := c.nodes[cp.node]; n != nil {
		n.remove(cp.info)
		if n.node == nil && n.pods == 0 {
			delete(c.nodes, cp.node)
		}
	}
	return true
}

// setNode adds or updates a node.
func (c *cache) setNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[node.Name]
	if n == nil {
		c.nodes[node.Name] = NewNodeInfo(node)
		c.sorted = nil
		return
	}
	if n.node == nil {
		c.sorted = nil
	}
	n.setNode(node)
}

// deleteNode drops a node; pods still bound to it keep a placeholder
// until they go.
func (c *cache) deleteNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[name]
	if n == nil {
		return
	}
	c.sorted = nil
	if n.pods == 0 {
		delete(c.nodes, name)
		return
	}
	n.setNode(nil)
}

// setService adds, updates or (with gone) deletes a Service, and
// recounts the spread groups of the pods in its namespace when the pods
// it selects may have changed.
func (c *cache) setService(svc *corev1.Service, gone bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	byName := c.services[svc.Namespace]
	if old := byName[svc.Name]; old != nil && !gone && maps.Equal(old.Spec.Selector, svc.Spec.Selector) {
		// Same pods selected (a status or port change): nothing to recount.
		byName[svc.Name] = svc
		return
	}
	if gone {
		delete(byName, svc.Name)
	} else {
		if byName == nil {
			byName = map[string]*corev1.Service{}
			c.services[svc.Namespace] = byName
		}
		byName[svc.Name] = svc
	}
	services := c.servicesLocked(svc.Namespace)
	var recount []*cachedPod
	for _, cp := range c.pods {
		if cp.info.pod.Namespace == svc.Namespace {
			recount = append(recount, cp)
		}
	}
	for _, cp := range recount {
		c.removeLocked(cp.info.pod.UID)
		c.placeLocked(&cachedPod{info: newPodInfo(cp.info.pod, services), node: cp.node, assumed: cp.assumed})
	}
}

func (c *cache) servicesLocked(ns string) []*corev1.Service {
	byName := c.services[ns]
	if len(byName) == 0 {
		return nil
	}
	out := make([]*corev1.Service, 0, len(byName))
	for _, s := range byName {
		out = append(out, s)
	}
	return out
}

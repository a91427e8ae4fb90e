package scheduler

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// ErrAssigned is Schedule's answer for a pod that already names its
// node: such a pod is never the scheduler's to place.
var ErrAssigned = errors.New("scheduler: pod is already assigned to a node")

// Filter reasons, worded as kube-scheduler words them in FailedScheduling
// events ("N <reason>").
const (
	ReasonNotReady         = "node(s) were not ready"
	ReasonUnschedulable    = "node(s) were unschedulable"
	ReasonNodeAffinity     = "node(s) didn't match Pod's node affinity/selector"
	ReasonHostPorts        = "node(s) didn't have free ports for the requested pod ports"
	ReasonTooManyPods      = "Too many pods"
	reasonInsufficient     = "Insufficient "
	reasonUntoleratedTaint = "node(s) had untolerated taint {%s: %s}"
)

// Score weights, kube-scheduler's defaults for the matching plugins.
const (
	maxNodeScore          = 100
	weightLeastAllocated  = 1
	weightBalanced        = 1
	weightNodeAffinity    = 2
	weightTaintToleration = 3
	weightSpread          = 2
)

// FitError says why a pod fits on no node: how many nodes there were and
// how many failed for each reason. A node counts under every reason its
// first failing filter gave (resources may give several).
type FitError struct {
	NumAllNodes int
	Reasons     map[string]int
}

// Error is kube-scheduler's message: "0/3 nodes are available: 1
// node(s) didn't match Pod's node affinity/selector, 2 Insufficient
// cpu." — reasons as "count reason", sorted as strings, as it sorts them.
func (e *FitError) Error() string {
	if e.NumAllNodes == 0 {
		return "no nodes available to schedule pods"
	}
	parts := make([]string, 0, len(e.Reasons))
	for r, n := range e.Reasons {
		parts = append(parts, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(parts)
	msg := fmt.Sprintf("0/%d nodes are available:", e.NumAllNodes)
	if len(parts) > 0 {
		msg += " " + strings.Join(parts, ", ") + "."
	}
	return msg
}

// Schedule picks the node for pod: the best-scoring node that passes
// every filter, or a *FitError when none does, or ErrAssigned when the
// pod already has a node. It reads s and pod and changes neither.
func Schedule(s *Snapshot, pod *corev1.Pod) (string, error) {
	if pod.Spec.NodeName != "" {
		return "", ErrAssigned
	}
	var services []*corev1.Service
	for _, svc := range s.Services {
		if svc.Namespace == pod.Namespace {
			services = append(services, svc)
		}
	}
	node, fe := schedule(s.Nodes, newPodInfo(pod, services), s.TieBreak)
	if fe != nil {
		return "", fe
	}
	return node, nil
}

// schedule is Schedule over nodes whose entries may be placeholders
// (NodeInfo without a node), which it skips.
func schedule(nodes []*NodeInfo, p *podInfo, tieBreak uint64) (string, *FitError) {
	feasible := make([]*NodeInfo, 0, len(nodes))
	fe := &FitError{}
	for _, n := range nodes {
		if n.node == nil {
			continue
		}
		fe.NumAllNodes++
		reasons := filter(n, p)
		if len(reasons) == 0 {
			feasible = append(feasible, n)
			continue
		}
		if fe.Reasons == nil {
			fe.Reasons = map[string]int{}
		}
		for _, r := range reasons {
			fe.Reasons[r]++
		}
	}
	if len(feasible) == 0 {
		return "", fe
	}
	if len(feasible) == 1 {
		return feasible[0].node.Name, nil
	}
	totals := scoreNodes(feasible, p)
	best := slices.Max(totals)
	var ties []int
	for i, t := range totals {
		if t == best {
			ties = append(ties, i)
		}
	}
	return feasible[ties[tieBreak%uint64(len(ties))]].node.Name, nil
}

// filter runs the filters in kube-scheduler's order and returns the
// reasons of the first that fails, or nil when the pod fits.
func filter(n *NodeInfo, p *podInfo) []string {
	node, pod := n.node, p.pod
	if !nodeReady(node) {
		return []string{ReasonNotReady}
	}
	if node.Spec.Unschedulable && !tolerates(pod.Spec.Tolerations, &corev1.Taint{
		Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule,
	}) {
		return []string{ReasonUnschedulable}
	}
	if t := untoleratedTaint(node.Spec.Taints, pod.Spec.Tolerations); t != nil {
		return []string{fmt.Sprintf(reasonUntoleratedTaint, t.Key, t.Value)}
	}
	if !nodeAffinityMatches(pod, node) {
		return []string{ReasonNodeAffinity}
	}
	if len(p.ports) > 0 && !n.portsFree(p.ports) {
		return []string{ReasonHostPorts}
	}
	return insufficient(n, p)
}

// nodeReady: the node says Ready=True. A node that has not reported yet
// is not ready.
func nodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// insufficient lists what the node lacks for the pod, in
// kube-scheduler's order: pod count, cpu, memory, ephemeral storage,
// extended resources by name. A resource the pod does not request never
// fails, even on an overcommitted node.
func insufficient(n *NodeInfo, p *podInfo) []string {
	var out []string
	if n.pods+1 > n.allowedPods {
		out = append(out, ReasonTooManyPods)
	}
	alloc, used := &n.allocatable, &n.requested
	if r := p.req.milliCPU; r > 0 && r > alloc.milliCPU-used.milliCPU {
		out = append(out, reasonInsufficient+string(corev1.ResourceCPU))
	}
	if r := p.req.memory; r > 0 && r > alloc.memory-used.memory {
		out = append(out, reasonInsufficient+string(corev1.ResourceMemory))
	}
	if r := p.req.ephemeral; r > 0 && r > alloc.ephemeral-used.ephemeral {
		out = append(out, reasonInsufficient+string(corev1.ResourceEphemeralStorage))
	}
	if len(p.req.scalar) > 0 {
		for _, name := range slices.Sorted(maps.Keys(p.req.scalar)) {
			if r := p.req.scalar[name]; r > 0 && r > alloc.scalar[name]-used.scalar[name] {
				out = append(out, reasonInsufficient+string(name))
			}
		}
	}
	return out
}

// tolerates reports whether any toleration tolerates the taint.
func tolerates(tols []corev1.Toleration, taint *corev1.Taint) bool {
	for i := range tols {
		if toleratesTaint(&tols[i], taint) {
			return true
		}
	}
	return false
}

// toleratesTaint matches as corev1.Toleration.ToleratesTaint does with
// the alpha comparison operators (Gt, Lt) off: they match nothing.
func toleratesTaint(t *corev1.Toleration, taint *corev1.Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key != "" && t.Key != taint.Key {
		return false
	}
	switch t.Operator {
	case "", corev1.TolerationOpEqual:
		return t.Value == taint.Value
	case corev1.TolerationOpExists:
		return true
	}
	return false
}

// untoleratedTaint is the first NoSchedule or NoExecute taint the
// tolerations do not tolerate, or nil.
func untoleratedTaint(taints []corev1.Taint, tols []corev1.Toleration) *corev1.Taint {
	for i := range taints {
		t := &taints[i]
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if !tolerates(tols, t) {
			return t
		}
	}
	return nil
}

// nodeAffinityMatches applies spec.nodeSelector and the required node
// affinity; the pod needs both.
func nodeAffinityMatches(pod *corev1.Pod, node *corev1.Node) bool {
	if len(pod.Spec.NodeSelector) > 0 &&
		!labels.SelectorFromValidatedSet(pod.Spec.NodeSelector).Matches(labels.Set(node.Labels)) {
		return false
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return true
	}
	// The terms are ORed; an empty list matches no node.
	for i := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		if termMatches(&a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[i], node) {
			return true
		}
	}
	return false
}

// termMatches ANDs a term's expressions (on labels) and fields (on
// metadata.name); a term with neither matches no node.
func termMatches(t *corev1.NodeSelectorTerm, node *corev1.Node) bool {
	if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
		return false
	}
	for _, r := range t.MatchExpressions {
		if !requirementMatches(r, node.Labels) {
			return false
		}
	}
	for _, r := range t.MatchFields {
		if r.Key != "metadata.name" || !requirementMatches(r, map[string]string{"metadata.name": node.Name}) {
			return false
		}
	}
	return true
}

func requirementMatches(r corev1.NodeSelectorRequirement, l map[string]string) bool {
	v, ok := l[r.Key]
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		return ok && slices.Contains(r.Values, v)
	case corev1.NodeSelectorOpNotIn:
		return !ok || !slices.Contains(r.Values, v)
	case corev1.NodeSelectorOpExists:
		return ok
	case corev1.NodeSelectorOpDoesNotExist:
		return !ok
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !ok || len(r.Values) != 1 {
			return false
		}
		have, err1 := strconv.ParseInt(v, 10, 64)
		want, err2 := strconv.ParseInt(r.Values[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.Operator == corev1.NodeSelectorOpGt {
			return have > want
		}
		return have < want
	}
	return false
}

// scoreNodes weighs the scores of each feasible node, in its order.
func scoreNodes(nodes []*NodeInfo, p *podInfo) []int64 {
	totals := make([]int64, len(nodes))
	affinity := make([]int64, len(nodes))
	taints := make([]int64, len(nodes))
	spread := make([]int64, len(nodes))
	for i, n := range nodes {
		totals[i] = weightLeastAllocated*leastAllocated(n, p) + weightBalanced*balancedAllocation(n, p)
		affinity[i] = preferredAffinity(n, p)
		taints[i] = preferNoScheduleTaints(n, p)
		spread[i] = spreadCount(n, p)
	}
	normalize(affinity, false)
	normalize(taints, true)
	normalize(spread, true)
	for i := range totals {
		totals[i] += weightNodeAffinity*affinity[i] + weightTaintToleration*taints[i] + weightSpread*spread[i]
	}
	return totals
}

// normalize scales raw scores to 0..maxNodeScore by the largest; reverse
// makes the smallest raw score the best. All zero stays 0, or is
// maxNodeScore everywhere when reversed.
func normalize(scores []int64, reverse bool) {
	top := slices.Max(scores)
	for i := range scores {
		switch {
		case top == 0 && reverse:
			scores[i] = maxNodeScore
		case top == 0:
		case reverse:
			scores[i] = maxNodeScore - scores[i]*maxNodeScore/top
		default:
			scores[i] = scores[i] * maxNodeScore / top
		}
	}
}

// leastAllocated favours the node with the most cpu and memory left
// after the pod, by its non-zero requests (equal weights).
func leastAllocated(n *NodeInfo, p *podInfo) int64 {
	cpu := leastScore(n.nonZeroRequested.milliCPU+p.nonZero.milliCPU, n.allocatable.milliCPU)
	mem := leastScore(n.nonZeroRequested.memory+p.nonZero.memory, n.allocatable.memory)
	return (cpu + mem) / 2
}

func leastScore(requested, capacity int64) int64 {
	if capacity <= 0 || requested > capacity {
		return 0
	}
	return (capacity - requested) * maxNodeScore / capacity
}

// balancedAllocation favours the node whose cpu and memory would be
// used in the most similar fractions after the pod: 100 × (1 − the
// standard deviation of the fractions), by actual requests.
func balancedAllocation(n *NodeInfo, p *podInfo) int64 {
	var fr []float64
	add := func(requested, capacity int64) {
		if capacity > 0 {
			fr = append(fr, min(float64(requested)/float64(capacity), 1))
		}
	}
	add(n.requested.milliCPU+p.req.milliCPU, n.allocatable.milliCPU)
	add(n.requested.memory+p.req.memory, n.allocatable.memory)
	if len(fr) < 2 {
		return maxNodeScore
	}
	var mean, sq float64
	for _, f := range fr {
		mean += f
	}
	mean /= float64(len(fr))
	for _, f := range fr {
		sq += (f - mean) * (f - mean)
	}
	std := math.Sqrt(sq / float64(len(fr)))
	return int64((1 - std) * maxNodeScore)
}

// preferredAffinity sums the weights of the preferred node affinity
// terms the node matches (normalized later).
func preferredAffinity(n *NodeInfo, p *podInfo) int64 {
	a := p.pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil {
		return 0
	}
	var sum int64
	for i := range a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
		t := &a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution[i]
		if t.Weight != 0 && termMatches(&t.Preference, n.node) {
			sum += int64(t.Weight)
		}
	}
	return sum
}

// preferNoScheduleTaints counts the node's PreferNoSchedule taints the
// pod does not tolerate (fewer is better).
func preferNoScheduleTaints(n *NodeInfo, p *podInfo) int64 {
	var tols []corev1.Toleration
	for _, t := range p.pod.Spec.Tolerations {
		if t.Effect == "" || t.Effect == corev1.TaintEffectPreferNoSchedule {
			tols = append(tols, t)
		}
	}
	var count int64
	for i := range n.node.Spec.Taints {
		t := &n.node.Spec.Taints[i]
		if t.Effect == corev1.TaintEffectPreferNoSchedule && !tolerates(tols, t) {
			count++
		}
	}
	return count
}

// spreadCount counts the node's pods in the pod's spread groups (fewer
// is better). A pod in two groups (a ReplicaSet behind a Service) counts
// once per group: simpler than kube-scheduler's union of selectors, and
// the same ranking when the groups hold the same pods.
func spreadCount(n *NodeInfo, p *podInfo) int64 {
	var count int64
	for _, k := range p.spread {
		count += int64(n.spread[k])
	}
	return count
}

package scheduler

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
)

// kubectl drain's words (k8s.io/kubectl/pkg/drain), so users and scripts
// see what they know.
const (
	drainDaemonSetFatal      = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"
	drainDaemonSetWarning    = "ignoring DaemonSet-managed Pods"
	drainLocalStorageFatal   = "Pods with local storage (use --delete-emptydir-data to override)"
	drainLocalStorageWarning = "deleting Pods with local storage"
	drainUnmanagedFatal      = "Pods that declare no controller (use --force to override)"
	drainUnmanagedWarning    = "deleting Pods that declare no controller"
)

// DrainOptions are the flags of `weir drain` that choose pods, as
// kubectl drain's.
type DrainOptions struct {
	// Force evicts pods that declare no controller, and DaemonSet pods
	// whose DaemonSet is gone (--force).
	Force bool
	// IgnoreDaemonSets leaves DaemonSet pods running instead of refusing
	// the drain (--ignore-daemonsets).
	IgnoreDaemonSets bool
	// DeleteEmptyDirData evicts pods with emptyDir volumes, whose data
	// is lost (--delete-emptydir-data).
	DeleteEmptyDirData bool
}

// DaemonSetLookup says whether the DaemonSet namespace/name exists: nil
// when it does, the API's error otherwise (NotFound when it is gone).
// The CLI backs it with a GET of the DaemonSet.
type DaemonSetLookup func(namespace, name string) error

// DrainPlan is what draining a node will do with each of its pods. It
// does not change once built; reading it from several goroutines is safe.
type DrainPlan struct {
	items []drainItem
}

type drainItem struct {
	pod   *corev1.Pod
	evict bool
	// kind is "" (evict quietly, or skip quietly), "warning" or "error";
	// message is kubectl's text for it.
	kind, message string
}

// PlanDrain decides, as kubectl drain does, which of a node's pods to
// evict: mirror pods are skipped; DaemonSet pods stay (with
// IgnoreDaemonSets, else they fail the drain) unless finished or
// orphaned under Force; pods with emptyDir volumes need
// DeleteEmptyDirData; pods without a controller need Force; finished
// pods always go. daemonSets is asked only about DaemonSets that
// control unfinished pods; nil means every DaemonSet exists. It does no
// I/O beyond daemonSets.
func PlanDrain(pods []corev1.Pod, daemonSets DaemonSetLookup, opts DrainOptions) *DrainPlan {
	plan := &DrainPlan{}
	for i := range pods {
		it := drainItem{pod: &pods[i]}
		// kubectl's filters run in this order; the first that keeps
		// the pod decides, else the last one's verdict (and warning)
		// stands.
		for _, f := range []func(*corev1.Pod, DaemonSetLookup, DrainOptions) drainItem{
			drainDaemonSetFilter, drainMirrorFilter, drainLocalStorageFilter, drainUnmanagedFilter,
		} {
			it = f(&pods[i], daemonSets, opts)
			if !it.evict {
				break
			}
		}
		plan.items = append(plan.items, it)
	}
	return plan
}

func drainDaemonSetFilter(pod *corev1.Pod, daemonSets DaemonSetLookup, opts DrainOptions) drainItem {
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != "DaemonSet" || ref.APIVersion != "apps/v1" || terminal(pod) {
		return drainItem{pod: pod, evict: true}
	}
	if daemonSets != nil {
		if err := daemonSets(pod.Namespace, ref.Name); err != nil {
			if apierrors.IsNotFound(err) && opts.Force {
				return drainItem{pod: pod, evict: true, kind: "warning", message: err.Error()}
			}
			return drainItem{pod: pod, kind: "error", message: err.Error()}
		}
	}
	if !opts.IgnoreDaemonSets {
		return drainItem{pod: pod, kind: "error", message: drainDaemonSetFatal}
	}
	return drainItem{pod: pod, kind: "warning", message: drainDaemonSetWarning}
}

func drainMirrorFilter(pod *corev1.Pod, _ DaemonSetLookup, _ DrainOptions) drainItem {
	if _, ok := pod.Annotations[corev1.MirrorPodAnnotationKey]; ok {
		return drainItem{pod: pod}
	}
	return drainItem{pod: pod, evict: true}
}

func drainLocalStorageFilter(pod *corev1.Pod, _ DaemonSetLookup, opts DrainOptions) drainItem {
	local := false
	for _, v := range pod.Spec.Volumes {
		local = local || v.EmptyDir != nil
	}
	switch {
	case !local || terminal(pod):
		return drainItem{pod: pod, evict: true}
	case !opts.DeleteEmptyDirData:
		return drainItem{pod: pod, kind: "error", message: drainLocalStorageFatal}
	}
	return drainItem{pod: pod, evict: true, kind: "warning", message: drainLocalStorageWarning}
}

func drainUnmanagedFilter(pod *corev1.Pod, _ DaemonSetLookup, opts DrainOptions) drainItem {
	switch {
	case terminal(pod) || metav1.GetControllerOf(pod) != nil:
		return drainItem{pod: pod, evict: true}
	case opts.Force:
		return drainItem{pod: pod, evict: true, kind: "warning", message: drainUnmanagedWarning}
	}
	return drainItem{pod: pod, kind: "error", message: drainUnmanagedFatal}
}

// Evict lists the pods to evict, in the order PlanDrain got them.
func (p *DrainPlan) Evict() []*corev1.Pod {
	var out []*corev1.Pod
	for _, it := range p.items {
		if it.evict {
			out = append(out, it.pod)
		}
	}
	return out
}

// Warnings is kubectl's warning line, without its "Warning: " prefix:
// each message with the pods it applies to ("ignoring DaemonSet-managed
// Pods: kube-system/agent-x; deleting Pods that declare no controller:
// default/bare"), messages in the order they first appear; "" when none.
func (p *DrainPlan) Warnings() string {
	return strings.Join(p.group("warning"), "; ")
}

// Err is nil when the drain may go ahead. Otherwise it holds one error
// per reason, worded as kubectl's ("cannot delete Pods that declare no
// controller (use --force to override): default/bare"), aggregated as
// kubectl aggregates them ("[a, b]" when several); kubectl prints it as
// `error: unable to drain node "n" due to error: <Err>, continuing
// command...`. A drain with an error evicts nothing.
func (p *DrainPlan) Err() error {
	var errs []error
	for _, g := range p.group("error") {
		errs = append(errs, fmt.Errorf("cannot delete %s", g))
	}
	return utilerrors.NewAggregate(errs)
}

// group renders "message: ns/a, ns/b" per message of the given kind.
func (p *DrainPlan) group(kind string) []string {
	var order []string
	pods := map[string][]string{}
	for _, it := range p.items {
		if it.kind != kind {
			continue
		}
		msg := it.message
		if msg == "" {
			msg = "unexpected error"
		}
		if _, ok := pods[msg]; !ok {
			order = append(order, msg)
		}
		pods[msg] = append(pods[msg], it.pod.Namespace+"/"+it.pod.Name)
	}
	out := make([]string, 0, len(order))
	for _, msg := range order {
		out = append(out, msg+": "+strings.Join(pods[msg], ", "))
	}
	return out
}

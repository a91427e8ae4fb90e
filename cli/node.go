package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Cordon marks nodes unschedulable (uncordon: schedulable again).
func (c *Client) Cordon(ctx context.Context, s Streams, names []string, cordon bool, dry DryRun) error {
	if len(names) == 0 {
		return errors.New("resource(s) were provided, but no name was specified")
	}
	var errs []error
	for _, n := range names {
		if err := c.cordon(ctx, s, n, cordon, dry); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Client) cordon(ctx context.Context, s Streams, name string, cordon bool, dry DryRun) error {
	node, err := c.Typed.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	verb := "cordoned"
	if !cordon {
		verb = "uncordoned"
	}
	if node.Spec.Unschedulable == cordon {
		fmt.Fprintf(s.Out, "node/%s already %s\n", name, verb)
		return nil
	}
	if dry != DryRunClient {
		patch := fmt.Appendf(nil, `{"spec":{"unschedulable":%t}}`, cordon)
		if !cordon {
			patch = []byte(`{"spec":{"unschedulable":null}}`)
		}
		if _, err := c.Typed.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{DryRun: dry.opts()}); err != nil {
			return err
		}
	}
	fmt.Fprintf(s.Out, "node/%s %s%s\n", name, verb, dry.suffix())
	return nil
}

// DrainOptions are drain's flags.
type DrainOptions struct {
	Force              bool
	IgnoreDaemonSets   bool
	DeleteEmptyDirData bool
	GracePeriod        int // -1: each pod's own
	Timeout            time.Duration
	Selector           string // pods to evict
	DryRun             DryRun
	// RetryDelay is how long an eviction refused by a disruption budget
	// waits before the next try (kubectl: 5 s).
	RetryDelay time.Duration
}

const mirrorPodAnnotation = "kubernetes.io/config.mirror"

// drainPlan splits a node's pods into those to evict, those skipped with
// a warning, and the reasons the drain may not proceed, with kubectl's
// wording.
func drainPlan(pods []corev1.Pod, o DrainOptions) (evict []corev1.Pod, warnings, errs []string) {
	type group struct {
		msg  string
		pods []string
	}
	var (
		daemonSet, bare, local []string
		dsWarn, bareWarn       []string
	)
	for _, p := range pods {
		id := p.Namespace + "/" + p.Name
		if _, ok := p.Annotations[mirrorPodAnnotation]; ok {
			continue
		}
		terminal := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		ref := metav1.GetControllerOf(&p)
		if ref != nil && ref.Kind == "DaemonSet" && !terminal {
			if o.IgnoreDaemonSets {
				dsWarn = append(dsWarn, id)
			} else {
				daemonSet = append(daemonSet, id)
			}
			continue
		}
		if ref == nil && !terminal {
			if o.Force {
				bareWarn = append(bareWarn, id)
			} else {
				bare = append(bare, id)
				continue
			}
		}
		if !terminal && !o.DeleteEmptyDirData && hasEmptyDir(p) {
			local = append(local, id)
			continue
		}
		evict = append(evict, p)
	}
	for _, g := range []group{
		{"DaemonSet-managed Pods (use --ignore-daemonsets to ignore)", daemonSet},
		{"Pods that declare no controller (use --force to override)", bare},
		{"Pods with local storage (use --delete-emptydir-data to override)", local},
	} {
		if len(g.pods) > 0 {
			errs = append(errs, fmt.Sprintf("cannot delete %s: %s", g.msg, strings.Join(g.pods, ", ")))
		}
	}
	if len(dsWarn) > 0 {
		warnings = append(warnings, "ignoring DaemonSet-managed Pods: "+strings.Join(dsWarn, ", "))
	}
	if len(bareWarn) > 0 {
		warnings = append(warnings, "deleting Pods that declare no controller: "+strings.Join(bareWarn, ", "))
	}
	return evict, warnings, errs
}

func hasEmptyDir(p corev1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir != nil {
			return true
		}
	}
	return false
}

// Drain cordons a node, evicts its pods through pods/eviction and waits
// for them to be gone, as kubectl drain does.
func (c *Client) Drain(ctx context.Context, s Streams, o DrainOptions, name string) error {
	if err := c.cordon(ctx, s, name, true, o.DryRun); err != nil {
		return err
	}
	list, err := c.Typed.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + name, LabelSelector: o.Selector})
	if err != nil {
		return err
	}
	pods := list.Items
	sort.Slice(pods, func(i, j int) bool {
		return pods[i].Namespace+"/"+pods[i].Name < pods[j].Namespace+"/"+pods[j].Name
	})
	evict, warnings, refusals := drainPlan(pods, o)
	if len(refusals) > 0 {
		return fmt.Errorf("unable to drain node %q due to error: [%s], continuing command...\nThere are pending nodes to be drained:\n %s",
			name, strings.Join(refusals, ", "), name)
	}
	for _, w := range warnings {
		fmt.Fprintf(s.ErrOut, "Warning: %s\n", w)
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 5 * time.Second
	}
	errc := make(chan error, len(evict))
	for _, p := range evict {
		go func() { errc <- c.evict(ctx, s, p, o) }()
	}
	var errs []error
	for range evict {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("unable to drain node %q due to error: %w, continuing command...\nThere are pending nodes to be drained:\n %s",
			name, errors.Join(errs...), name)
	}
	fmt.Fprintf(s.Out, "node/%s drained%s\n", name, o.DryRun.suffix())
	return nil
}

func (c *Client) evict(ctx context.Context, s Streams, p corev1.Pod, o DrainOptions) error {
	if o.DryRun == DryRunClient {
		fmt.Fprintf(s.Out, "evicting pod %s/%s (dry run)\n", p.Namespace, p.Name)
		return nil
	}
	fmt.Fprintf(s.Out, "evicting pod %s/%s\n", p.Namespace, p.Name)
	ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace}}
	if o.GracePeriod >= 0 {
		g := int64(o.GracePeriod)
		ev.DeleteOptions = &metav1.DeleteOptions{GracePeriodSeconds: &g}
	}
	if o.DryRun == DryRunServer {
		if ev.DeleteOptions == nil {
			ev.DeleteOptions = &metav1.DeleteOptions{}
		}
		ev.DeleteOptions.DryRun = []string{metav1.DryRunAll}
	}
	for {
		err := c.Typed.PolicyV1().Evictions(p.Namespace).Evict(ctx, ev)
		if err == nil || apierrors.IsNotFound(err) {
			break
		}
		if !apierrors.IsTooManyRequests(err) {
			return fmt.Errorf("error when evicting pods/%q -n %q: %w", p.Name, p.Namespace, err)
		}
		fmt.Fprintf(s.ErrOut, "error when evicting pods/%q -n %q (will retry after %v): %v\n", p.Name, p.Namespace, o.RetryDelay, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("error when evicting pods/%q -n %q: global timeout reached: %v", p.Name, p.Namespace, o.Timeout)
		case <-time.After(o.RetryDelay):
		}
	}
	if o.DryRun == DryRunServer {
		return nil
	}
	for {
		cur, err := c.Typed.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && cur.UID != p.UID) {
			fmt.Fprintf(s.Out, "pod/%s evicted\n", p.Name)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("error when waiting for pod %q in namespace %q to terminate: global timeout reached: %v", p.Name, p.Namespace, o.Timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

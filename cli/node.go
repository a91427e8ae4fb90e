package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
	"weir.dev/weir/controlplane/scheduler"

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
	plan := scheduler.PlanDrain(pods, func(ns, ds string) error {
		_, err := c.Typed.AppsV1().DaemonSets(ns).Get(ctx, ds, metav1.GetOptions{})
		return err
	}, scheduler.DrainOptions{Force: o.Force, IgnoreDaemonSets: o.IgnoreDaemonSets, DeleteEmptyDirData: o.DeleteEmptyDirData})
	if err := plan.Err(); err != nil {
		return fmt.Errorf("unable to drain node %q due to error: %v, continuing command...\nThere are pending nodes to be drained:\n %s", name, err, name)
	}
	if w := plan.Warnings(); w != "" {
		fmt.Fprintf(s.ErrOut, "Warning: %s\n", w)
	}
	var evict []corev1.Pod
	for _, p := range plan.Evict() {
		evict = append(evict, *p)
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

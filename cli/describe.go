package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"

	"weir.dev/weir/cli/describe"
)

// DescribeOptions are describe's flags.
type DescribeOptions struct {
	Selector      string
	AllNamespaces bool
	ShowEvents    bool
}

// Describe prints the description of each named object (or of every
// object matching the selector), as kubectl describe does.
func (c *Client) Describe(ctx context.Context, s Streams, o DescribeOptions, args []string) error {
	targets, err := c.parseTargets(args)
	if err != nil {
		return err
	}
	var errs []error
	first := true
	for _, t := range targets {
		objs, _, err := c.objects(ctx, t, GetOptions{Selector: o.Selector, AllNamespaces: o.AllNamespaces})
		if err != nil {
			errs = append(errs, err)
		}
		for _, u := range objs {
			text, err := c.describeOne(ctx, u, o.ShowEvents)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !first {
				fmt.Fprintln(s.Out)
			}
			first = false
			fmt.Fprint(s.Out, text)
		}
	}
	if first && len(errs) == 0 {
		fmt.Fprintln(s.ErrOut, noResources(c, targets, GetOptions{AllNamespaces: o.AllNamespaces}))
	}
	return errors.Join(errs...)
}

func (c *Client) describeOne(ctx context.Context, u *unstructured.Unstructured, events bool) (string, error) {
	obj, err := toTyped(u)
	if err != nil {
		obj = u
	}
	var rel describe.Related
	if events {
		rel.Events = c.eventsFor(ctx, u)
	}
	ns := u.GetNamespace()
	switch o := obj.(type) {
	case *appsv1.Deployment:
		rss, err := c.ownedReplicaSets(ctx, o)
		if err == nil {
			rel.NewReplicaSet, rel.OldReplicaSets = splitReplicaSets(o, rss)
		}
	case *appsv1.ReplicaSet:
		sel, err := metav1.LabelSelectorAsSelector(o.Spec.Selector)
		if err == nil {
			if pods, err := c.Typed.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()}); err == nil {
				rel.Pods = pods.Items
			}
		}
	case *corev1.Service:
		if sl, err := c.Typed.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + o.Name}); err == nil {
			rel.EndpointSlices = sl.Items
		}
	case *corev1.Node:
		if pods, err := c.Typed.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + o.Name}); err == nil {
			rel.Pods = pods.Items
		}
	}
	var typed runtime.Object = obj
	return describe.Describe(typed, rel, time.Now())
}

// eventsFor lists the Events about u.
func (c *Client) eventsFor(ctx context.Context, u *unstructured.Unstructured) []corev1.Event {
	sel := fields.Set{"involvedObject.name": u.GetName(), "involvedObject.uid": string(u.GetUID())}
	if u.GetNamespace() != "" {
		sel["involvedObject.namespace"] = u.GetNamespace()
	}
	ns := u.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	list, err := c.Typed.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: sel.AsSelector().String()})
	if err != nil {
		return nil
	}
	return list.Items
}

// ownedReplicaSets lists the ReplicaSets d controls.
func (c *Client) ownedReplicaSets(ctx context.Context, d *appsv1.Deployment) ([]*appsv1.ReplicaSet, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("deployment %s selector: %w", d.Name, err)
	}
	list, err := c.Typed.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	var out []*appsv1.ReplicaSet
	for i := range list.Items {
		rs := &list.Items[i]
		if ref := metav1.GetControllerOf(rs); ref != nil && ref.UID == d.UID {
			out = append(out, rs)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// splitReplicaSets finds the ReplicaSet whose template is d's (ignoring
// the pod-template-hash label) and the others with pods.
func splitReplicaSets(d *appsv1.Deployment, rss []*appsv1.ReplicaSet) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet) {
	var newRS *appsv1.ReplicaSet
	var old []*appsv1.ReplicaSet
	for _, rs := range rss {
		if newRS == nil && equalTemplates(&rs.Spec.Template, &d.Spec.Template) {
			newRS = rs
			continue
		}
		if rs.Spec.Replicas == nil || *rs.Spec.Replicas > 0 || rs.Status.Replicas > 0 {
			old = append(old, rs)
		}
	}
	return newRS, old
}

func equalTemplates(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return apiequality.Semantic.DeepEqual(a, b)
}

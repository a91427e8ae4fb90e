package namespace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
)

// resource is one namespaced resource whose objects a namespace's
// deletion removes.
type resource struct {
	GVR schema.GroupVersionResource
	// Collection says the resource serves deletecollection; otherwise its
	// objects are listed and deleted one by one.
	Collection bool
}

// namespacedResources picks, from preferred-version discovery lists, the
// namespaced resources that can be listed and deleted. The same kind in
// two groups is one resource, the one discovery lists first: weir serves
// legacy group/versions (extensions/v1beta1 and the like) as aliases of
// the current ones.
func namespacedResources(lists []*metav1.APIResourceList) []resource {
	var out []resource
	seen := map[string]bool{}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, ar := range l.APIResources {
			if !ar.Namespaced || ar.Name == "" || strings.Contains(ar.Name, "/") || seen[ar.Kind] {
				continue
			}
			del, coll := slices.Contains(ar.Verbs, "delete"), slices.Contains(ar.Verbs, "deletecollection")
			if !slices.Contains(ar.Verbs, "list") || (!del && !coll) {
				continue
			}
			seen[ar.Kind] = true
			g, v := gv.Group, gv.Version
			if ar.Group != "" {
				g = ar.Group
			}
			if ar.Version != "" {
				v = ar.Version
			}
			out = append(out, resource{GVR: schema.GroupVersionResource{Group: g, Version: v, Resource: ar.Name}, Collection: coll})
		}
	}
	return out
}

// discover asks the server for its namespaced resources, retrying with
// back-off until discovery succeeds completely or ctx ends: a partial
// answer would let a namespace go while some of its content stays.
func discover(ctx context.Context, d discovery.DiscoveryInterface, log *slog.Logger) ([]resource, error) {
	wait := 100 * time.Millisecond
	for {
		lists, err := discovery.ServerPreferredResourcesWithContext(ctx, discovery.ToDiscoveryInterfaceWithContext(d))
		if err == nil {
			if rs := namespacedResources(lists); len(rs) > 0 {
				return rs, nil
			}
			err = fmt.Errorf("no namespaced resources among %d group versions", len(lists))
		}
		log.Warn("discover resources; retrying", slog.Any("error", err), slog.Duration("retry_in", wait))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// content is what a deletion pass left in a namespace.
type content struct {
	// Remaining counts the objects still there, by resource ("pods",
	// "deployments.apps").
	Remaining map[string]int
	// Finalizers counts the objects still there holding each finalizer.
	Finalizers map[string]int
}

func (c content) empty() bool { return len(c.Remaining) == 0 }

// deleteContent asks the server to delete every object in namespace ns
// (propagation Background, each pod with its own grace period) and reports
// what is still there: objects with finalizers, and pods a node still
// runs, stay until those finish.
func deleteContent(ctx context.Context, dyn dynamic.Interface, rs []resource, ns string) (content, error) {
	left := content{Remaining: map[string]int{}, Finalizers: map[string]int{}}
	var errs []error
	for _, r := range rs {
		ri := dyn.Resource(r.GVR).Namespace(ns)
		one := !r.Collection
		if r.Collection {
			err := ri.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
			switch {
			case err == nil, apierrors.IsNotFound(err):
			case apierrors.IsMethodNotSupported(err):
				one = true
			default:
				errs = append(errs, fmt.Errorf("delete %s in %s: %w", r.GVR.GroupResource(), ns, err))
				continue
			}
		}
		list, err := ri.List(ctx, metav1.ListOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("list %s in %s: %w", r.GVR.GroupResource(), ns, err))
			continue
		}
		for i := range list.Items {
			o := &list.Items[i]
			if one && o.GetDeletionTimestamp() == nil {
				if err := ri.Delete(ctx, o.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("delete %s %s/%s: %w", r.GVR.GroupResource(), ns, o.GetName(), err))
				}
			}
			// Counted even when just deleted: the next pass lists again.
			left.Remaining[r.GVR.GroupResource().String()]++
			for _, f := range o.GetFinalizers() {
				left.Finalizers[f]++
			}
		}
	}
	return left, errors.Join(errs...)
}

// Reasons of the conditions a terminating namespace carries, as
// Kubernetes' namespace controller writes them.
const (
	reasonContentDeletionFailed = "ContentDeletionFailed"
	reasonContentDeleted        = "ContentDeleted"
	reasonSomeResourcesRemain   = "SomeResourcesRemain"
	reasonContentRemoved        = "ContentRemoved"
	reasonSomeFinalizersRemain  = "SomeFinalizersRemain"
	reasonNoFinalizers          = "ContentHasNoFinalizers"
)

// conditions returns the namespace's conditions after a deletion pass
// that failed with failure (nil for none) and left left behind. A
// condition keeps its lastTransitionTime while its status stays; other
// condition types on the namespace are kept as they are.
func conditions(old []corev1.NamespaceCondition, now metav1.Time, failure error, left content) []corev1.NamespaceCondition {
	set := func(c corev1.NamespaceCondition, ok bool, trueReason, trueMsg, falseReason, falseMsg string) corev1.NamespaceCondition {
		c.Status, c.Reason, c.Message = corev1.ConditionFalse, falseReason, falseMsg
		if ok {
			c.Status, c.Reason, c.Message = corev1.ConditionTrue, trueReason, trueMsg
		}
		return c
	}
	fresh := []corev1.NamespaceCondition{
		set(corev1.NamespaceCondition{Type: corev1.NamespaceDeletionContentFailure}, failure != nil,
			reasonContentDeletionFailed, errMessage(failure),
			reasonContentDeleted, "All content successfully deleted, may be waiting on finalization"),
		set(corev1.NamespaceCondition{Type: corev1.NamespaceContentRemaining}, len(left.Remaining) > 0,
			reasonSomeResourcesRemain, "Some resources are remaining: "+counts(left.Remaining, "resource instances"),
			reasonContentRemoved, "All content successfully removed"),
		set(corev1.NamespaceCondition{Type: corev1.NamespaceFinalizersRemaining}, len(left.Finalizers) > 0,
			reasonSomeFinalizersRemain, "Some content in the namespace has finalizers remaining: "+counts(left.Finalizers, "resource instances"),
			reasonNoFinalizers, "All content-preserving finalizers finished"),
	}
	out := slices.Clone(old)
	for _, c := range fresh {
		i := slices.IndexFunc(out, func(o corev1.NamespaceCondition) bool { return o.Type == c.Type })
		switch {
		case i < 0:
			c.LastTransitionTime = now
			out = append(out, c)
		case out[i].Status != c.Status:
			c.LastTransitionTime = now
			out[i] = c
		default:
			c.LastTransitionTime = out[i].LastTransitionTime
			out[i] = c
		}
	}
	return out
}

func errMessage(err error) string {
	if err == nil {
		return ""
	}
	return "Failed to delete all resource types, " + err.Error()
}

// counts renders {"pods": 2} as "pods has 2 resource instances", sorted.
func counts(m map[string]int, what string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s has %d %s", k, m[k], what))
	}
	return strings.Join(parts, ", ")
}

// sameConditions reports whether a and b say the same, times aside.
func sameConditions(a, b []corev1.NamespaceCondition) bool {
	return slices.EqualFunc(a, b, func(x, y corev1.NamespaceCondition) bool {
		return x.Type == y.Type && x.Status == y.Status && x.Reason == y.Reason && x.Message == y.Message
	})
}

// withoutFinalizer returns fins minus f, never nil.
func withoutFinalizer(fins []corev1.FinalizerName, f corev1.FinalizerName) []corev1.FinalizerName {
	out := make([]corev1.FinalizerName, 0, len(fins))
	for _, x := range fins {
		if x != f {
			out = append(out, x)
		}
	}
	return out
}

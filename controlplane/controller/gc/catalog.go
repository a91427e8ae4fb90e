package gc

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
)

// resource is one served resource: where it lives and whether it is
// namespaced.
type resource struct {
	GVR        schema.GroupVersionResource
	Kind       string
	Namespaced bool
}

// catalog is what discovery told the collector: the resources to watch
// and how an owner reference's apiVersion and kind resolve to one of them.
// Read-only once built.
type catalog struct {
	watch  []resource
	byKind map[schema.GroupKind]resource
}

// ignored resources are resolvable as owners but not watched, as in
// Kubernetes' collector: events are many, short-lived and own nothing.
var ignored = map[schema.GroupResource]bool{
	{Resource: "events"}:                         true,
	{Group: "events.k8s.io", Resource: "events"}: true,
}

// newCatalog builds a catalog from preferred-version discovery lists. A
// resource must support list, watch and delete to be collected. The same
// kind served by two groups is one resource, the one discovery lists
// first: weir serves the legacy group/versions (extensions/v1beta1 and
// the like) as aliases of the current ones, and watching both would see
// every object twice. An owner reference naming the later group resolves
// to the first.
func newCatalog(lists []*metav1.APIResourceList) catalog {
	c := catalog{byKind: map[schema.GroupKind]resource{}}
	first := map[string]resource{} // kind -> the resource that serves it
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, ar := range l.APIResources {
			if ar.Name == "" || strings.Contains(ar.Name, "/") {
				continue // a subresource
			}
			if !hasVerbs(ar.Verbs, "list", "watch", "delete") {
				continue
			}
			g, v := gv.Group, gv.Version
			if ar.Group != "" {
				g = ar.Group
			}
			if ar.Version != "" {
				v = ar.Version
			}
			r := resource{GVR: schema.GroupVersionResource{Group: g, Version: v, Resource: ar.Name}, Kind: ar.Kind, Namespaced: ar.Namespaced}
			gk := schema.GroupKind{Group: g, Kind: ar.Kind}
			if f, ok := first[ar.Kind]; ok {
				if _, seen := c.byKind[gk]; !seen {
					c.byKind[gk] = f
				}
				continue
			}
			first[ar.Kind] = r
			c.byKind[gk] = r
			if !ignored[r.GVR.GroupResource()] {
				c.watch = append(c.watch, r)
			}
		}
	}
	return c
}

func hasVerbs(have metav1.Verbs, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// resolve finds the resource an owner reference names.
func (c catalog) resolve(apiVersion, kind string) (resource, bool) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return resource{}, false
	}
	r, ok := c.byKind[schema.GroupKind{Group: gv.Group, Kind: kind}]
	return r, ok
}

// discover asks the server for its resources, retrying with back-off
// until discovery succeeds completely or ctx ends: a partial answer would
// leave some owners unresolvable.
func discover(ctx context.Context, d discovery.DiscoveryInterface, log *slog.Logger) (catalog, error) {
	wait := 100 * time.Millisecond
	for {
		lists, err := discovery.ServerPreferredResourcesWithContext(ctx, discovery.ToDiscoveryInterfaceWithContext(d))
		if err == nil {
			c := newCatalog(lists)
			if len(c.watch) > 0 {
				return c, nil
			}
			err = fmt.Errorf("no collectable resources among %d group versions", len(lists))
		}
		log.Warn("discover resources; retrying", slog.Any("error", err), slog.Duration("retry_in", wait))
		select {
		case <-ctx.Done():
			return catalog{}, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

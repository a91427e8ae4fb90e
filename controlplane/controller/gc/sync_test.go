package gc

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
)

var deploys = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

func unstructuredObj(apiVersion, kind, name string, uid types.UID, mutate func(*unstructured.Unstructured)) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace("ns")
	u.SetName(name)
	u.SetUID(uid)
	u.SetResourceVersion("7")
	if mutate != nil {
		mutate(u)
	}
	return u
}

func deploymentRef(uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: uid}
}

// TestSyncDependent checks that the collector acts only on what the API
// confirms: a fake API answers its GETs and records its writes.
func TestSyncDependent(t *testing.T) {
	now := metav1.Now()
	waiting := func(u *unstructured.Unstructured) {
		u.SetDeletionTimestamp(&now)
		u.SetFinalizers([]string{FinalizerForeground})
	}
	tests := []struct {
		name string
		// api holds the owner as the server has it, nil for none.
		api *unstructured.Unstructured
		// cached is the owner as the graph has it, nil for unseen.
		cached      *node
		ref         metav1.OwnerReference
		terminating bool // the dependent is already being deleted in the API
		want        []string
	}{
		{
			name:   "owner alive in the cache: no API call at all",
			cached: &node{ref: objectRef{Resource: deploys, Namespace: "ns", Name: "web", UID: "owner"}},
			api:    unstructuredObj("apps/v1", "Deployment", "web", "owner", nil),
			ref:    deploymentRef("owner"),
			want:   nil,
		},
		{
			name: "owner not yet in the cache but alive in the API: kept",
			api:  unstructuredObj("apps/v1", "Deployment", "web", "owner", nil),
			ref:  deploymentRef("owner"),
			want: []string{"get configmaps", "get deployments"},
		},
		{
			name: "owner gone: deleted in the background",
			ref:  deploymentRef("owner"),
			want: []string{"get configmaps", "get deployments", "delete configmaps Background uid=dep rv=7"},
		},
		{
			name: "owner replaced by another incarnation: deleted",
			api:  unstructuredObj("apps/v1", "Deployment", "web", "other", nil),
			ref:  deploymentRef("owner"),
			want: []string{"get configmaps", "get deployments", "delete configmaps Background uid=dep rv=7"},
		},
		{
			name: "owner waiting for its dependents: deleted in the foreground",
			cached: &node{ref: objectRef{Resource: deploys, Namespace: "ns", Name: "web", UID: "owner"},
				deleting: true, finalizers: []string{FinalizerForeground}},
			api:  unstructuredObj("apps/v1", "Deployment", "web", "owner", waiting),
			ref:  deploymentRef("owner"),
			want: []string{"get configmaps", "get deployments", "delete configmaps Foreground uid=dep rv=7"},
		},
		{
			name:        "dependent already terminating: nothing",
			ref:         deploymentRef("owner"),
			terminating: true,
			want:        []string{"get configmaps"},
		},
		{
			name: "owner of a kind the server does not serve: kept",
			ref:  metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "Widget", Name: "w", UID: "owner"},
			want: nil,
		},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dep := unstructuredObj("v1", "ConfigMap", "cm", "dep", func(u *unstructured.Unstructured) {
				u.SetOwnerReferences([]metav1.OwnerReference{tc.ref})
				if tc.terminating {
					u.SetDeletionTimestamp(&now)
					u.SetFinalizers([]string{"example.com/hold"})
				}
			})
			objs := []runtime.Object{dep}
			if tc.api != nil {
				objs = append(objs, tc.api)
			}
			dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
				map[schema.GroupVersionResource]string{cms: "ConfigMapList", deploys: "DeploymentList"}, objs...)
			c := newCollector(dyn, newCatalog(discovered), slog.New(slog.DiscardHandler))
			if tc.cached != nil {
				c.graph.observe(tc.cached)
			}
			// The cache has not seen the dependent terminate yet.
			c.graph.observe(&node{ref: objectRef{Resource: cms, Namespace: "ns", Name: "cm", UID: "dep"}, owners: []metav1.OwnerReference{tc.ref}})

			if err := c.sync(t.Context(), "dep"); err != nil {
				t.Fatalf("sync: %v", err)
			}
			var got []string
			for _, a := range dyn.Actions() {
				s := a.GetVerb() + " " + a.GetResource().Resource
				if d, ok := a.(k8stesting.DeleteActionImpl); ok {
					o := d.DeleteOptions
					s += fmt.Sprintf(" %s uid=%s rv=%s", *o.PropagationPolicy, *o.Preconditions.UID, *o.Preconditions.ResourceVersion)
				}
				got = append(got, s)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("API calls (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHandler checks the informer side: objects reach the graph as
// metadata, and a deletion the informer only learned of on a re-list
// (a tombstone) still queues the dependents.
func TestHandler(t *testing.T) {
	c := newCollector(dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()), newCatalog(discovered), slog.New(slog.DiscardHandler))
	defer c.queue.ShutDown()
	drain := func() []types.UID {
		var out []types.UID
		for c.queue.Len() > 0 {
			uid, _ := c.queue.Get()
			out = append(out, uid)
			c.queue.Done(uid)
		}
		return out
	}
	owner := unstructuredObj("apps/v1", "Deployment", "web", "owner", nil)
	dep := unstructuredObj("v1", "ConfigMap", "cm", "dep", func(u *unstructured.Unstructured) {
		u.SetOwnerReferences([]metav1.OwnerReference{deploymentRef("owner")})
		u.SetLabels(map[string]string{"a": "b"})
		u.Object["data"] = map[string]any{"big": "value"}
	})
	slim, err := metadataOnly(dep)
	if err != nil {
		t.Fatalf("metadataOnly: %v", err)
	}
	want := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{
		"namespace": "ns", "name": "cm", "uid": "dep", "resourceVersion": "7",
		"ownerReferences": []any{map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "owner"}},
	}}
	if diff := cmp.Diff(want, slim.(*unstructured.Unstructured).Object); diff != "" {
		t.Errorf("metadataOnly (-want +got):\n%s", diff)
	}

	h := c.handler(deploys)
	h.OnAdd(owner, true)
	c.handler(cms).OnAdd(slim, true)
	if diff := cmp.Diff([]types.UID{"owner", "dep"}, drain()); diff != "" {
		t.Errorf("queued after adds (-want +got):\n%s", diff)
	}
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/web", Obj: owner})
	if _, ok := c.graph.get("owner"); ok {
		t.Errorf("deleted owner still in the graph")
	}
	if diff := cmp.Diff([]types.UID{"dep"}, drain()); diff != "" {
		t.Errorf("queued after the owner's deletion (-want +got):\n%s", diff)
	}
}

package gc

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var all = metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}

// discovered is a cut-down copy of what weir's discovery answers,
// including a legacy group that serves current kinds again.
var discovered = []*metav1.APIResourceList{
	{GroupVersion: "v1", APIResources: []metav1.APIResource{
		{Name: "namespaces", Kind: "Namespace", Verbs: all},
		{Name: "namespaces/finalize", Kind: "Namespace", Verbs: metav1.Verbs{"update"}},
		{Name: "pods", Kind: "Pod", Namespaced: true, Verbs: all},
		{Name: "pods/status", Kind: "Pod", Namespaced: true, Verbs: metav1.Verbs{"get", "patch", "update"}},
		{Name: "configmaps", Kind: "ConfigMap", Namespaced: true, Verbs: all},
		{Name: "events", Kind: "Event", Namespaced: true, Verbs: all},
		{Name: "bindings", Kind: "Binding", Namespaced: true, Verbs: metav1.Verbs{"create"}},
	}},
	{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
		{Name: "deployments", Kind: "Deployment", Namespaced: true, Verbs: all},
		{Name: "deployments/scale", Group: "autoscaling", Version: "v1", Kind: "Scale", Namespaced: true, Verbs: metav1.Verbs{"get", "update"}},
	}},
	{GroupVersion: "extensions/v1beta1", APIResources: []metav1.APIResource{
		{Name: "deployments", Kind: "Deployment", Namespaced: true, Verbs: all},
		{Name: "ingresses", Kind: "Ingress", Namespaced: true, Verbs: all},
	}},
	{GroupVersion: "not a group version/x/y"},
}

func TestCatalog(t *testing.T) {
	cat := newCatalog(discovered)
	wantWatch := []resource{
		{GVR: schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, Kind: "Namespace"},
		{GVR: schema.GroupVersionResource{Version: "v1", Resource: "pods"}, Kind: "Pod", Namespaced: true},
		{GVR: schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, Kind: "ConfigMap", Namespaced: true},
		{GVR: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, Kind: "Deployment", Namespaced: true},
		{GVR: schema.GroupVersionResource{Group: "extensions", Version: "v1beta1", Resource: "ingresses"}, Kind: "Ingress", Namespaced: true},
	}
	if diff := cmp.Diff(wantWatch, cat.watch); diff != "" {
		t.Errorf("watched resources (-want +got):\n%s", diff)
	}

	deployments := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	tests := []struct {
		apiVersion, kind string
		want             schema.GroupVersionResource
		ok               bool
	}{
		{"apps/v1", "Deployment", deployments, true},
		{"apps/v1beta2", "Deployment", deployments, true},
		{"extensions/v1beta1", "Deployment", deployments, true},
		{"v1", "Pod", schema.GroupVersionResource{Version: "v1", Resource: "pods"}, true},
		{"v1", "Event", schema.GroupVersionResource{Version: "v1", Resource: "events"}, true},
		{"v1", "Binding", schema.GroupVersionResource{}, false},
		{"example.com/v1", "Widget", schema.GroupVersionResource{}, false},
		{"a/b/c", "Deployment", schema.GroupVersionResource{}, false},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.apiVersion+" "+tc.kind, func(t *testing.T) {
			r, ok := cat.resolve(tc.apiVersion, tc.kind)
			if ok != tc.ok || r.GVR != tc.want {
				t.Errorf("resolve = %v, %t; want %v, %t", r.GVR, ok, tc.want, tc.ok)
			}
		})
	}
}

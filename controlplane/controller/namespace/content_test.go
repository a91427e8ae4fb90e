package namespace

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

var all = metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}

func TestNamespacedResources(t *testing.T) {
	lists := []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "namespaces", Kind: "Namespace", Verbs: all},
			{Name: "pods", Kind: "Pod", Namespaced: true, Verbs: all},
			{Name: "pods/status", Kind: "Pod", Namespaced: true, Verbs: metav1.Verbs{"get", "update"}},
			{Name: "events", Kind: "Event", Namespaced: true, Verbs: all},
			{Name: "bindings", Kind: "Binding", Namespaced: true, Verbs: metav1.Verbs{"create"}},
			{Name: "oneatatime", Kind: "OneAtATime", Namespaced: true, Verbs: metav1.Verbs{"list", "delete"}},
		}},
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
			{Name: "deployments", Kind: "Deployment", Namespaced: true, Verbs: all},
		}},
		{GroupVersion: "extensions/v1beta1", APIResources: []metav1.APIResource{
			{Name: "deployments", Kind: "Deployment", Namespaced: true, Verbs: all},
		}},
		{GroupVersion: "bad/group/version"},
	}
	want := []resource{
		{GVR: schema.GroupVersionResource{Version: "v1", Resource: "pods"}, Collection: true},
		{GVR: schema.GroupVersionResource{Version: "v1", Resource: "events"}, Collection: true},
		{GVR: schema.GroupVersionResource{Version: "v1", Resource: "oneatatime"}},
		{GVR: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, Collection: true},
	}
	if diff := cmp.Diff(want, namespacedResources(lists)); diff != "" {
		t.Errorf("namespacedResources (-want +got):\n%s", diff)
	}
}

func TestConditions(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	remaining := content{Remaining: map[string]int{"pods": 2, "configmaps": 1}, Finalizers: map[string]int{"example.com/hold": 1}}
	tests := []struct {
		name    string
		old     []corev1.NamespaceCondition
		failure error
		left    content
		want    []corev1.NamespaceCondition
	}{
		{
			name: "content remaining on a fresh namespace",
			left: remaining,
			want: []corev1.NamespaceCondition{
				{Type: corev1.NamespaceDeletionContentFailure, Status: corev1.ConditionFalse, Reason: reasonContentDeleted,
					Message: "All content successfully deleted, may be waiting on finalization", LastTransitionTime: t1},
				{Type: corev1.NamespaceContentRemaining, Status: corev1.ConditionTrue, Reason: reasonSomeResourcesRemain,
					Message: "Some resources are remaining: configmaps has 1 resource instances, pods has 2 resource instances", LastTransitionTime: t1},
				{Type: corev1.NamespaceFinalizersRemaining, Status: corev1.ConditionTrue, Reason: reasonSomeFinalizersRemain,
					Message: "Some content in the namespace has finalizers remaining: example.com/hold has 1 resource instances", LastTransitionTime: t1},
			},
		},
		{
			name: "a failure, unchanged statuses keep their times, other types stay",
			old: []corev1.NamespaceCondition{
				{Type: "Other", Status: corev1.ConditionTrue, LastTransitionTime: t0},
				{Type: corev1.NamespaceDeletionContentFailure, Status: corev1.ConditionFalse, Reason: reasonContentDeleted, LastTransitionTime: t0},
				{Type: corev1.NamespaceContentRemaining, Status: corev1.ConditionFalse, Reason: reasonContentRemoved, LastTransitionTime: t0},
			},
			failure: errors.New("delete pods in x: boom"),
			left:    content{},
			want: []corev1.NamespaceCondition{
				{Type: "Other", Status: corev1.ConditionTrue, LastTransitionTime: t0},
				{Type: corev1.NamespaceDeletionContentFailure, Status: corev1.ConditionTrue, Reason: reasonContentDeletionFailed,
					Message: "Failed to delete all resource types, delete pods in x: boom", LastTransitionTime: t1},
				{Type: corev1.NamespaceContentRemaining, Status: corev1.ConditionFalse, Reason: reasonContentRemoved,
					Message: "All content successfully removed", LastTransitionTime: t0},
				{Type: corev1.NamespaceFinalizersRemaining, Status: corev1.ConditionFalse, Reason: reasonNoFinalizers,
					Message: "All content-preserving finalizers finished", LastTransitionTime: t1},
			},
		},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := conditions(tc.old, t1, tc.failure, tc.left)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			if !sameConditions(got, got) || sameConditions(tc.old, got) {
				t.Errorf("sameConditions does not tell the old conditions from the new")
			}
		})
	}
}

func TestWithoutFinalizer(t *testing.T) {
	got := withoutFinalizer([]corev1.FinalizerName{"a", corev1.FinalizerKubernetes, "b"}, corev1.FinalizerKubernetes)
	if diff := cmp.Diff([]corev1.FinalizerName{"a", "b"}, got); diff != "" {
		t.Errorf("withoutFinalizer (-want +got):\n%s", diff)
	}
	if got := withoutFinalizer([]corev1.FinalizerName{corev1.FinalizerKubernetes}, corev1.FinalizerKubernetes); got == nil || len(got) != 0 {
		t.Errorf("withoutFinalizer of the last one = %#v, want empty and non-nil", got)
	}
}

// TestDeleteContentOneByOne checks the path for resources that do not
// serve deletecollection, against a fake API.
func TestDeleteContentOneByOne(t *testing.T) {
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	obj := func(ns, name string, terminating bool) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		u.SetKind("ConfigMap")
		u.SetNamespace(ns)
		u.SetName(name)
		if terminating {
			now := metav1.Now()
			u.SetDeletionTimestamp(&now)
			u.SetFinalizers([]string{"example.com/hold"})
		}
		return u
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{gvr: "ConfigMapList"},
		obj("doomed", "a", false), obj("doomed", "held", true), obj("other", "b", false))

	left, err := deleteContent(t.Context(), dyn, []resource{{GVR: gvr}}, "doomed")
	if err != nil {
		t.Fatalf("deleteContent: %v", err)
	}
	want := content{Remaining: map[string]int{"configmaps": 2}, Finalizers: map[string]int{"example.com/hold": 1}}
	if diff := cmp.Diff(want, left); diff != "" {
		t.Errorf("first pass left (-want +got):\n%s", diff)
	}
	var deleted []string
	for _, a := range dyn.Actions() {
		if a.GetVerb() == "delete" {
			deleted = append(deleted, a.GetNamespace())
		}
	}
	if diff := cmp.Diff([]string{"doomed"}, deleted); diff != "" {
		t.Errorf("deletes by namespace (-want +got):\n%s", diff)
	}

	left, err = deleteContent(t.Context(), dyn, []resource{{GVR: gvr}}, "doomed")
	if err != nil {
		t.Fatalf("deleteContent: %v", err)
	}
	want = content{Remaining: map[string]int{"configmaps": 1}, Finalizers: map[string]int{"example.com/hold": 1}}
	if diff := cmp.Diff(want, left); diff != "" {
		t.Errorf("second pass left (-want +got):\n%s", diff)
	}
	if left.empty() {
		t.Errorf("content with a held object reads as empty")
	}
}

package gc

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

func TestDecideDependent(t *testing.T) {
	tests := []struct {
		name       string
		finalizers []string
		owners     []owner
		want       verdict
	}{
		{name: "no owners is never collected", want: verdict{}},
		{name: "one live owner keeps it", owners: []owner{{"a", ownerAlive}}, want: verdict{}},
		{
			name:   "a live owner keeps it and absent references go",
			owners: []owner{{"a", ownerAbsent}, {"b", ownerAlive}, {"c", ownerAbsent}},
			want:   verdict{DropOwners: []types.UID{"a", "c"}},
		},
		{
			name:   "a live owner keeps it and the reference to a waiting owner goes",
			owners: []owner{{"a", ownerAlive}, {"b", ownerDeleting}},
			want:   verdict{DropOwners: []types.UID{"b"}},
		},
		{
			name:   "every owner absent deletes in the background",
			owners: []owner{{"a", ownerAbsent}, {"b", ownerAbsent}},
			want:   verdict{Delete: true, Policy: metav1.DeletePropagationBackground},
		},
		{
			name:   "an owner waiting for dependents deletes in the foreground",
			owners: []owner{{"a", ownerDeleting}},
			want:   verdict{Delete: true, Policy: metav1.DeletePropagationForeground},
		},
		{
			name:   "waiting and absent owners delete in the foreground",
			owners: []owner{{"a", ownerAbsent}, {"b", ownerDeleting}},
			want:   verdict{Delete: true, Policy: metav1.DeletePropagationForeground},
		},
		{
			name:       "its own orphan finalizer is honoured",
			finalizers: []string{"example.com/x", FinalizerOrphan},
			owners:     []owner{{"a", ownerAbsent}},
			want:       verdict{Delete: true, Policy: metav1.DeletePropagationOrphan},
		},
		{
			name:       "its own foreground finalizer is honoured",
			finalizers: []string{FinalizerForeground},
			owners:     []owner{{"a", ownerAbsent}},
			want:       verdict{Delete: true, Policy: metav1.DeletePropagationForeground},
		},
		{
			name:       "its own finalizers do not matter while an owner lives",
			finalizers: []string{FinalizerOrphan},
			owners:     []owner{{"a", ownerAlive}},
			want:       verdict{},
		},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := decideDependent(tc.finalizers, tc.owners)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decideDependent (-want +got):\n%s", diff)
			}
		})
	}
}

var cms = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

func ref(uid string) objectRef {
	return objectRef{Resource: cms, Namespace: "ns", Name: "n-" + uid, UID: types.UID(uid)}
}

func TestDecideDeleting(t *testing.T) {
	deps := []node{{ref: ref("d1")}, {ref: ref("d2"), deleting: true}}
	tests := []struct {
		name       string
		owner      node
		dependents []node
		want       ownerPlan
	}{
		{
			name:       "not being deleted: nothing to do",
			owner:      node{ref: ref("o"), finalizers: []string{FinalizerForeground}},
			dependents: deps,
			want:       ownerPlan{},
		},
		{
			name:       "orphan drops the reference from every dependent, then the finalizer",
			owner:      node{ref: ref("o"), deleting: true, finalizers: []string{FinalizerOrphan}},
			dependents: deps,
			want:       ownerPlan{Orphan: []objectRef{ref("d1"), ref("d2")}, RemoveFinalizer: FinalizerOrphan},
		},
		{
			name:  "orphan without dependents drops the finalizer",
			owner: node{ref: ref("o"), deleting: true, finalizers: []string{FinalizerOrphan}},
			want:  ownerPlan{RemoveFinalizer: FinalizerOrphan},
		},
		{
			name:       "orphan comes before foreground",
			owner:      node{ref: ref("o"), deleting: true, finalizers: []string{FinalizerForeground, FinalizerOrphan}},
			dependents: deps[:1],
			want:       ownerPlan{Orphan: []objectRef{ref("d1")}, RemoveFinalizer: FinalizerOrphan},
		},
		{
			name:       "foreground waits while dependents remain, terminating ones too",
			owner:      node{ref: ref("o"), deleting: true, finalizers: []string{FinalizerForeground}},
			dependents: deps,
			want:       ownerPlan{Recheck: []types.UID{"d1", "d2"}},
		},
		{
			name:  "foreground without dependents drops the finalizer",
			owner: node{ref: ref("o"), deleting: true, finalizers: []string{"example.com/keep", FinalizerForeground}},
			want:  ownerPlan{RemoveFinalizer: FinalizerForeground},
		},
		{
			name:       "someone else's finalizer is left alone",
			owner:      node{ref: ref("o"), deleting: true, finalizers: []string{"example.com/keep"}},
			dependents: deps,
			want:       ownerPlan{},
		},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := decideDeleting(tc.owner, tc.dependents)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decideDeleting (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWithout(t *testing.T) {
	got := without([]string{"a", FinalizerOrphan, "b"}, FinalizerOrphan)
	if diff := cmp.Diff([]string{"a", "b"}, got); diff != "" {
		t.Errorf("without (-want +got):\n%s", diff)
	}
	if got := without([]string{FinalizerOrphan}, FinalizerOrphan); got == nil || len(got) != 0 {
		t.Errorf("without the last finalizer = %#v, want an empty non-nil list (a merge patch must send [])", got)
	}
}

package gc

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func ownedBy(uids ...string) []metav1.OwnerReference {
	var out []metav1.OwnerReference
	for _, u := range uids {
		out = append(out, metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "n-" + u, UID: types.UID(u)})
	}
	return out
}

// step is one event fed to the graph: observe n, or forget uid.
type step struct {
	name   string
	n      *node
	forget types.UID
	want   []types.UID // UIDs to reconcile
}

func TestGraphAffected(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		// dependents of each owner after the last step
		wantDeps map[types.UID][]types.UID
	}{
		{
			name: "a dependent of an unseen owner is indexed and reconciled",
			steps: []step{
				{name: "add dependent", n: &node{ref: ref("d"), owners: ownedBy("o")}, want: []types.UID{"d"}},
				{name: "owner deleted before it was seen", forget: "o", want: nil},
			},
			wantDeps: map[types.UID][]types.UID{"o": {"d"}},
		},
		{
			name: "an owner's deletion reconciles its dependents",
			steps: []step{
				{name: "add owner", n: &node{ref: ref("o")}, want: []types.UID{"o"}},
				{name: "add d1", n: &node{ref: ref("d1"), owners: ownedBy("o")}, want: []types.UID{"d1"}},
				{name: "add d2", n: &node{ref: ref("d2"), owners: ownedBy("o", "p")}, want: []types.UID{"d2"}},
				{name: "owner goes", forget: "o", want: []types.UID{"d1", "d2"}},
			},
			wantDeps: map[types.UID][]types.UID{"o": {"d1", "d2"}, "p": {"d2"}},
		},
		{
			name: "an update that changes nothing the collector reads is ignored",
			steps: []step{
				{name: "add", n: &node{ref: ref("d"), owners: ownedBy("o")}, want: []types.UID{"d"}},
				{name: "same again", n: &node{ref: ref("d"), owners: ownedBy("o")}, want: nil},
				{name: "finalizer added", n: &node{ref: ref("d"), owners: ownedBy("o"), finalizers: []string{"x/y"}}, want: []types.UID{"d"}},
			},
			wantDeps: map[types.UID][]types.UID{"o": {"d"}},
		},
		{
			name: "dependents' changes reconcile owners being deleted",
			steps: []step{
				{name: "add owner", n: &node{ref: ref("o")}, want: []types.UID{"o"}},
				{name: "add dependent", n: &node{ref: ref("d"), owners: ownedBy("o")}, want: []types.UID{"d"}},
				{
					name: "owner deleted in the foreground",
					n:    &node{ref: ref("o"), deleting: true, finalizers: []string{FinalizerForeground}},
					want: []types.UID{"o"},
				},
				{
					name: "dependent starts terminating",
					n:    &node{ref: ref("d"), owners: ownedBy("o"), deleting: true, finalizers: []string{FinalizerForeground}},
					want: []types.UID{"d", "o"},
				},
				{name: "dependent gone", forget: "d", want: []types.UID{"o"}},
			},
			wantDeps: map[types.UID][]types.UID{},
		},
		{
			name: "a dropped reference reconciles the old owner and unindexes",
			steps: []step{
				{name: "add owner", n: &node{ref: ref("o"), deleting: true, finalizers: []string{FinalizerOrphan}}, want: []types.UID{"o"}},
				{name: "add dependent", n: &node{ref: ref("d"), owners: ownedBy("o", "p")}, want: []types.UID{"d", "o"}},
				{name: "reference to o dropped", n: &node{ref: ref("d"), owners: ownedBy("p")}, want: []types.UID{"d", "o"}},
			},
			wantDeps: map[types.UID][]types.UID{"p": {"d"}},
		},
		{
			name: "forgetting an unknown object does nothing",
			steps: []step{
				{name: "forget", forget: "x", want: nil},
			},
			wantDeps: map[types.UID][]types.UID{},
		},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGraph()
			for _, s := range tc.steps {
				var got []types.UID
				if s.n != nil {
					got = g.observe(s.n)
				} else {
					got = g.forget(s.forget)
				}
				if diff := cmp.Diff(s.want, got); diff != "" {
					t.Fatalf("step %q: affected (-want +got):\n%s", s.name, diff)
				}
			}
			gotDeps := map[types.UID][]types.UID{}
			for owner, deps := range g.dependents {
				for d := range deps {
					gotDeps[owner] = append(gotDeps[owner], d)
				}
			}
			for _, deps := range gotDeps {
				slices.Sort(deps)
			}
			if diff := cmp.Diff(tc.wantDeps, gotDeps); diff != "" {
				t.Errorf("dependents index (-want +got):\n%s", diff)
			}
			for owner, want := range tc.wantDeps {
				var observed []types.UID
				for _, d := range want {
					if _, ok := g.get(d); ok {
						observed = append(observed, d)
					}
				}
				var got []types.UID
				for _, n := range g.dependentsOf(owner) {
					got = append(got, n.ref.UID)
				}
				if diff := cmp.Diff(observed, got); diff != "" {
					t.Errorf("dependentsOf(%s) (-want +got):\n%s", owner, diff)
				}
			}
		})
	}
}

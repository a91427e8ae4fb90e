package deployment

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// history is a Deployment at revision 3 (image v3) with revisions 1 and
// 2 behind it, plus a ReplicaSet another controller owns.
func history() (*appsv1.Deployment, []*appsv1.ReplicaSet) {
	d := web("v3")
	d.Annotations[RevisionAnnotation] = "3"
	d.Annotations[corev1.LastAppliedConfigAnnotation] = `{"kind":"Deployment"}`
	d.Annotations["team"] = "edge"
	rss := []*appsv1.ReplicaSet{ownedRS(d, "v2", 2, 0, 0, 5), ownedRS(d, "v3", 3, 3, 3, 10), ownedRS(d, "v1", 1, 0, 0, 0)}
	rss[0].Annotations[ChangeCauseAnnotation] = "image v2"
	rss[1].Annotations[ChangeCauseAnnotation] = "image v3"
	rss[2].Annotations[ChangeCauseAnnotation] = "image v1"
	rss[2].Annotations["from-v1"] = "kept"
	foreign := ownedRS(d, "v9", 9, 0, 0, 1)
	foreign.OwnerReferences[0].UID = "someone-else"
	return d, append(rss, foreign)
}

func TestHistory(t *testing.T) {
	_, rss := history()
	var got []string
	for _, r := range History(rss[:3]) {
		got = append(got, r.ChangeCause)
		if r.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != "" {
			t.Errorf("revision %d template keeps the pod-template-hash label", r.Number)
		}
		if want := "v" + string(rune('0'+r.Number)); r.Template.Spec.Containers[0].Image != want {
			t.Errorf("revision %d template image %s, want %s", r.Number, r.Template.Spec.Containers[0].Image, want)
		}
	}
	if diff := cmp.Diff([]string{"image v1", "image v2", "image v3"}, got); diff != "" {
		t.Errorf("History change causes by revision (-want +got):\n%s", diff)
	}
	if len(rss[1].Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey]) == 0 {
		t.Errorf("History changed its input")
	}
	if h := History(nil); len(h) != 0 {
		t.Errorf("History(nil) = %v", h)
	}
}

func TestRollbackTo(t *testing.T) {
	tests := []struct {
		name      string
		revision  int64
		mod       func(*appsv1.Deployment)
		wantImage string
		wantErr   error
	}{
		{name: "to revision 1", revision: 1, wantImage: "v1"},
		{name: "0 is the previous revision", revision: 0, wantImage: "v2"},
		{name: "an unknown revision", revision: 7, wantErr: ErrRevisionNotFound},
		{name: "another controller's ReplicaSet is not history", revision: 9, wantErr: ErrRevisionNotFound},
		{name: "a negative revision", revision: -1, wantErr: ErrRevisionNotFound},
		{name: "the current template", revision: 3, wantErr: ErrSkipped},
		{name: "paused", revision: 1, mod: func(d *appsv1.Deployment) { d.Spec.Paused = true }, wantErr: ErrPaused},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, rss := history()
			if tc.mod != nil {
				tc.mod(d)
			}
			before := d.DeepCopy()
			got, err := RollbackTo(d, rss, tc.revision)
			if diff := cmp.Diff(before, d); diff != "" {
				t.Errorf("RollbackTo changed the Deployment (-before +after):\n%s", diff)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || got != nil {
					t.Fatalf("RollbackTo = %v, %v; want nil, %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("RollbackTo: %v", err)
			}
			if img := got.Spec.Template.Spec.Containers[0].Image; img != tc.wantImage {
				t.Errorf("template image %s, want %s", img, tc.wantImage)
			}
			if diff := cmp.Diff(map[string]string{"app": "web"}, got.Spec.Template.Labels); diff != "" {
				t.Errorf("template labels (-want +got):\n%s", diff)
			}
			// kubectl's rule: bookkeeping and last-applied stay, the rest
			// comes from the revision.
			want := map[string]string{
				RevisionAnnotation: "3", corev1.LastAppliedConfigAnnotation: `{"kind":"Deployment"}`,
				ChangeCauseAnnotation: "image " + tc.wantImage,
			}
			if tc.wantImage == "v1" {
				want["from-v1"] = "kept"
			}
			if diff := cmp.Diff(want, got.Annotations); diff != "" {
				t.Errorf("annotations (-want +got):\n%s", diff)
			}
			if got.ResourceVersion != d.ResourceVersion || got.UID != d.UID {
				t.Errorf("identity changed: the write must be a compare-and-swap on the Deployment read")
			}
		})
	}
	d, rss := history()
	if _, err := RollbackTo(d, rss[1:2], 0); !errors.Is(err, ErrNoHistory) {
		t.Errorf("RollbackTo with one revision = %v, want ErrNoHistory", err)
	}
}

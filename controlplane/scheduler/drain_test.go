package scheduler

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func drainPod(name string, mods ...func(*corev1.Pod)) corev1.Pod {
	p := pod(name, "", "", on("n1"))
	p.Status.Phase = corev1.PodRunning
	for _, m := range mods {
		m(p)
	}
	return *p
}

func controlledBy(kind string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		apiVersion := "apps/v1"
		if kind == "Job" {
			apiVersion = "batch/v1"
		}
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: "owner", UID: "owner-uid", Controller: new(true)}}
	}
}

func phase(ph corev1.PodPhase) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Status.Phase = ph }
}

func emptyDir(p *corev1.Pod) {
	p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
}

func mirror(p *corev1.Pod) {
	p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "hash"}
}

func TestPlanDrain(t *testing.T) {
	gone := func(ns, name string) error {
		return apierrors.NewNotFound(schema.GroupResource{Group: "apps", Resource: "daemonsets"}, name)
	}
	forbidden := func(ns, name string) error { return errors.New("daemonsets.apps \"owner\" is forbidden") }
	tests := []struct {
		name      string
		pods      []corev1.Pod
		daemonSet DaemonSetLookup
		opts      DrainOptions
		evict     []string
		warnings  string
		err       string
	}{
		{
			name:  "pods with controllers are evicted",
			pods:  []corev1.Pod{drainPod("rs", controlledBy("ReplicaSet")), drainPod("sts", controlledBy("StatefulSet")), drainPod("job", controlledBy("Job"))},
			evict: []string{"rs", "sts", "job"},
		},
		{
			name:  "a bare pod stops the drain",
			pods:  []corev1.Pod{drainPod("rs", controlledBy("ReplicaSet")), drainPod("bare"), drainPod("bare-2")},
			evict: []string{"rs"},
			err:   "cannot delete Pods that declare no controller (use --force to override): default/bare, default/bare-2",
		},
		{
			name:     "--force evicts bare pods with a warning",
			pods:     []corev1.Pod{drainPod("bare"), drainPod("rs", controlledBy("ReplicaSet"))},
			opts:     DrainOptions{Force: true},
			evict:    []string{"bare", "rs"},
			warnings: "deleting Pods that declare no controller: default/bare",
		},
		{
			name: "a DaemonSet pod stops the drain",
			pods: []corev1.Pod{drainPod("ds", controlledBy("DaemonSet")), drainPod("rs", controlledBy("ReplicaSet"))},
			// kubectl refuses DaemonSet pods even with --force.
			opts:  DrainOptions{Force: true},
			evict: []string{"rs"},
			err:   "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/ds",
		},
		{
			name:     "--ignore-daemonsets leaves DaemonSet pods with a warning",
			pods:     []corev1.Pod{drainPod("ds", controlledBy("DaemonSet")), drainPod("rs", controlledBy("ReplicaSet"))},
			opts:     DrainOptions{IgnoreDaemonSets: true},
			evict:    []string{"rs"},
			warnings: "ignoring DaemonSet-managed Pods: default/ds",
		},
		{
			name:      "an orphaned DaemonSet pod needs --force",
			pods:      []corev1.Pod{drainPod("ds", controlledBy("DaemonSet"))},
			daemonSet: gone,
			opts:      DrainOptions{IgnoreDaemonSets: true},
			err:       `cannot delete daemonsets.apps "owner" not found: default/ds`,
		},
		{
			name:      "--force evicts an orphaned DaemonSet pod",
			pods:      []corev1.Pod{drainPod("ds", controlledBy("DaemonSet"))},
			daemonSet: gone,
			opts:      DrainOptions{Force: true},
			evict:     []string{"ds"},
			// The warning of the first filter is dropped when a later
			// one passes the pod, as kubectl drops it.
		},
		{
			name:      "a failed DaemonSet lookup stops the drain",
			pods:      []corev1.Pod{drainPod("ds", controlledBy("DaemonSet"))},
			daemonSet: forbidden,
			opts:      DrainOptions{Force: true, IgnoreDaemonSets: true},
			err:       `cannot delete daemonsets.apps "owner" is forbidden: default/ds`,
		},
		{
			name:  "finished pods always go, DaemonSet or bare",
			pods:  []corev1.Pod{drainPod("ds-done", controlledBy("DaemonSet"), phase(corev1.PodSucceeded)), drainPod("bare-failed", phase(corev1.PodFailed), emptyDir)},
			evict: []string{"ds-done", "bare-failed"},
		},
		{
			name:  "mirror pods are skipped quietly",
			pods:  []corev1.Pod{drainPod("static", mirror), drainPod("rs", controlledBy("ReplicaSet"))},
			evict: []string{"rs"},
		},
		{
			name:  "local storage stops the drain",
			pods:  []corev1.Pod{drainPod("cache", controlledBy("ReplicaSet"), emptyDir)},
			evict: nil,
			err:   "cannot delete Pods with local storage (use --delete-emptydir-data to override): default/cache",
		},
		{
			name:  "--delete-emptydir-data evicts it (the warning is dropped by the controller check, as kubectl drops it)",
			pods:  []corev1.Pod{drainPod("cache", controlledBy("ReplicaSet"), emptyDir)},
			opts:  DrainOptions{DeleteEmptyDirData: true},
			evict: []string{"cache"},
		},
		{
			name:     "a bare pod with local storage under both flags warns once",
			pods:     []corev1.Pod{drainPod("scratch", emptyDir)},
			opts:     DrainOptions{DeleteEmptyDirData: true, Force: true},
			evict:    []string{"scratch"},
			warnings: "deleting Pods that declare no controller: default/scratch",
		},
		{
			name: "several reasons aggregate as kubectl's",
			pods: []corev1.Pod{drainPod("bare"), drainPod("ds", controlledBy("DaemonSet")), drainPod("rs", controlledBy("ReplicaSet"))},
			err: "[cannot delete Pods that declare no controller (use --force to override): default/bare, " +
				"cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/ds]",
			evict: []string{"rs"},
		},
		{
			name: "warnings of several kinds join with semicolons",
			pods: []corev1.Pod{drainPod("ds", controlledBy("DaemonSet")), drainPod("bare"),
				drainPod("ds-2", controlledBy("DaemonSet"))},
			opts:     DrainOptions{Force: true, IgnoreDaemonSets: true},
			evict:    []string{"bare"},
			warnings: "ignoring DaemonSet-managed Pods: default/ds, default/ds-2; deleting Pods that declare no controller: default/bare",
		},
		{
			name: "an empty node",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan := PlanDrain(tc.pods, tc.daemonSet, tc.opts)
			var evict []string
			for _, p := range plan.Evict() {
				evict = append(evict, p.Name)
			}
			if diff := cmp.Diff(tc.evict, evict); diff != "" {
				t.Errorf("evict (-want +got):\n%s", diff)
			}
			if got := plan.Warnings(); got != tc.warnings {
				t.Errorf("warnings:\n got %q\nwant %q", got, tc.warnings)
			}
			var got string
			if err := plan.Err(); err != nil {
				got = err.Error()
			}
			if got != tc.err {
				t.Errorf("error:\n got %q\nwant %q", got, tc.err)
			}
		})
	}
}

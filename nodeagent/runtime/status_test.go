package runtime

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestPodStatusPhase(t *testing.T) {
	run := observed{running: &corev1.ContainerStateRunning{}}
	ok := observed{terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}
	bad := observed{terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}
	wait := observed{waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	tests := []struct {
		name       string
		policy     corev1.RestartPolicy
		init, main []observed
		phase      corev1.PodPhase
		ready      bool
	}{
		{"all running", corev1.RestartPolicyAlways, nil, []observed{run, run}, corev1.PodRunning, true},
		{"one waiting", corev1.RestartPolicyAlways, nil, []observed{run, wait}, corev1.PodPending, false},
		{"init running", corev1.RestartPolicyAlways, []observed{run}, []observed{{}}, corev1.PodPending, false},
		{"init failed, never", corev1.RestartPolicyNever, []observed{bad}, []observed{{}}, corev1.PodFailed, false},
		{"init failed, always", corev1.RestartPolicyAlways, []observed{bad}, []observed{{}}, corev1.PodPending, false},
		{"never: all succeeded", corev1.RestartPolicyNever, []observed{ok}, []observed{ok, ok}, corev1.PodSucceeded, false},
		{"never: one failed", corev1.RestartPolicyNever, nil, []observed{ok, bad}, corev1.PodFailed, false},
		{"never: one still running", corev1.RestartPolicyNever, nil, []observed{run, bad}, corev1.PodRunning, false},
		{"onfailure: failed restarts", corev1.RestartPolicyOnFailure, nil, []observed{bad}, corev1.PodRunning, false},
		{"onfailure: succeeded", corev1.RestartPolicyOnFailure, nil, []observed{ok}, corev1.PodSucceeded, false},
		{"always: exited", corev1.RestartPolicyAlways, nil, []observed{ok}, corev1.PodRunning, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: tc.policy}}
			st := podStatus(pod, tc.init, tc.main, "10.244.1.2", "10.99.0.2", time.Unix(100, 0), time.Unix(200, 0))
			if st.Phase != tc.phase {
				t.Errorf("phase %s, want %s", st.Phase, tc.phase)
			}
			var ready bool
			for _, c := range st.Conditions {
				if c.Type == corev1.PodReady {
					ready = c.Status == corev1.ConditionTrue
				}
			}
			if ready != tc.ready {
				t.Errorf("ready %v, want %v", ready, tc.ready)
			}
			if st.PodIP != "10.244.1.2" || st.HostIP != "10.99.0.2" || st.StartTime == nil {
				t.Errorf("ips/start: %s %s %v", st.PodIP, st.HostIP, st.StartTime)
			}
			if len(tc.init) > 0 && tc.init[0].running != nil && st.ContainerStatuses[0].State.Waiting.Reason != "PodInitializing" {
				t.Errorf("main container while init runs: %+v", st.ContainerStatuses[0].State)
			}
		})
	}
}

func TestQOSClass(t *testing.T) {
	rl := func(cpu, mem string) corev1.ResourceList {
		l := corev1.ResourceList{}
		if cpu != "" {
			l[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			l[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		return l
	}
	tests := []struct {
		name string
		r    corev1.ResourceRequirements
		want corev1.PodQOSClass
	}{
		{"none", corev1.ResourceRequirements{}, corev1.PodQOSBestEffort},
		{"limits both", corev1.ResourceRequirements{Limits: rl("1", "1Gi")}, corev1.PodQOSGuaranteed},
		{"requests below limits", corev1.ResourceRequirements{Requests: rl("500m", ""), Limits: rl("1", "1Gi")}, corev1.PodQOSBurstable},
		{"memory only", corev1.ResourceRequirements{Limits: rl("", "1Gi")}, corev1.PodQOSBurstable},
	}
	for _, tc := range tests {
		pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Resources: tc.r}}}}
		if got := qosClass(pod); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestPodStatusUnready(t *testing.T) {
	run := observed{name: "a", running: &corev1.ContainerStateRunning{}}
	unready := observed{name: "b", running: &corev1.ContainerStateRunning{}, unready: true}
	pod := &corev1.Pod{Spec: corev1.PodSpec{}}
	st := podStatus(pod, nil, []observed{run, unready}, "10.244.1.2", "", time.Time{}, time.Unix(200, 0))
	if st.Phase != corev1.PodRunning {
		t.Errorf("phase %s, want Running", st.Phase)
	}
	if !st.ContainerStatuses[0].Ready || st.ContainerStatuses[1].Ready {
		t.Errorf("container ready %v %v, want true false", st.ContainerStatuses[0].Ready, st.ContainerStatuses[1].Ready)
	}
	for _, c := range st.Conditions {
		if (c.Type == corev1.PodReady || c.Type == corev1.ContainersReady) && c.Status != corev1.ConditionFalse {
			t.Errorf("%s is %s, want False", c.Type, c.Status)
		}
	}
}

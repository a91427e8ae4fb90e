package runtime

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// observed is what the runtime knows about one container of a pod.
type observed struct {
	name string
	// One of waiting, running, terminated is set.
	waiting        *corev1.ContainerStateWaiting
	running        *corev1.ContainerStateRunning
	terminated     *corev1.ContainerStateTerminated
	lastTerminated *corev1.ContainerStateTerminated
	restarts       int32
	containerID    string
	image, imageID string
	// unready is set for a running container whose readiness probe has
	// not succeeded (Config.Readiness).
	unready bool
	// notStarted is set for a running container whose startup probe has
	// not succeeded (Config.Startup).
	notStarted bool
}

func (o observed) status(ready bool) corev1.ContainerStatus {
	s := corev1.ContainerStatus{
		Name:         o.name,
		Image:        o.image,
		ImageID:      o.imageID,
		ContainerID:  o.containerID,
		RestartCount: o.restarts,
		Ready:        ready && o.running != nil && !o.unready,
		State:        corev1.ContainerState{Waiting: o.waiting, Running: o.running, Terminated: o.terminated},
	}
	started := o.running != nil && !o.notStarted
	s.Started = &started
	if o.lastTerminated != nil {
		s.LastTerminationState.Terminated = o.lastTerminated
	}
	return s
}

// podStatus computes a pod's status from its containers as the kubelet
// does (getPhase and the pod conditions). init and main hold one entry
// per container of the spec, in spec order. A container is ready when it
// runs and, if it has a readiness probe, the probe succeeds (unready).
// pod.Status carries the condition transition times forward.
func podStatus(pod *corev1.Pod, init, main []observed, podIP, hostIP string, start, now time.Time) corev1.PodStatus {
	policy := pod.Spec.RestartPolicy
	if policy == "" {
		policy = corev1.RestartPolicyAlways
	}
	st := corev1.PodStatus{QOSClass: qosClass(pod)}
	if podIP != "" {
		st.PodIP, st.PodIPs = podIP, []corev1.PodIP{{IP: podIP}}
	}
	if hostIP != "" {
		st.HostIP, st.HostIPs = hostIP, []corev1.HostIP{{IP: hostIP}}
	}
	if !start.IsZero() {
		t := metav1.NewTime(start)
		st.StartTime = &t
	}

	initialized, initFailed := true, false
	for _, o := range init {
		if !initialized && o.waiting != nil && o.waiting.Reason == "ContainerCreating" {
			// Not its turn yet: an earlier init container has not succeeded.
			o.waiting = &corev1.ContainerStateWaiting{Reason: "PodInitializing"}
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, o.status(false))
		switch {
		case o.terminated != nil && o.terminated.ExitCode == 0:
		case o.terminated != nil:
			initialized, initFailed = false, true
		default:
			initialized = false
		}
	}
	allReady := true
	var running, waiting, stopped, succeeded int
	for _, o := range main {
		if !initialized && (o.waiting == nil || o.waiting.Reason == "ContainerCreating") && o.running == nil && o.terminated == nil {
			o.waiting = &corev1.ContainerStateWaiting{Reason: "PodInitializing"}
		}
		st.ContainerStatuses = append(st.ContainerStatuses, o.status(true))
		switch {
		case o.running != nil:
			running++
		case o.terminated != nil:
			stopped++
			if o.terminated.ExitCode == 0 {
				succeeded++
			}
		case o.waiting != nil && o.lastTerminated != nil:
			stopped++ // restarting
		default:
			waiting++
		}
		if o.running == nil || o.unready {
			allReady = false
		}
	}

	switch {
	case initFailed && policy == corev1.RestartPolicyNever:
		st.Phase = corev1.PodFailed
	case !initialized:
		st.Phase = corev1.PodPending
	case waiting > 0:
		st.Phase = corev1.PodPending
	case running > 0:
		st.Phase = corev1.PodRunning
	case stopped > 0:
		switch {
		case policy == corev1.RestartPolicyAlways:
			st.Phase = corev1.PodRunning
		case stopped == succeeded:
			st.Phase = corev1.PodSucceeded
		case policy == corev1.RestartPolicyNever:
			st.Phase = corev1.PodFailed
		default:
			st.Phase = corev1.PodRunning
		}
	default:
		st.Phase = corev1.PodPending
	}

	ready := initialized && allReady && len(main) > 0
	readyReason := "ContainersNotReady"
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		ready, readyReason = false, "PodCompleted"
	}
	cond := func(t corev1.PodConditionType, ok bool, reason string) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionTrue}
		if !ok {
			c.Status, c.Reason = corev1.ConditionFalse, reason
		}
		c.LastTransitionTime = metav1.NewTime(now)
		for _, p := range pod.Status.Conditions {
			if p.Type == t && p.Status == c.Status {
				c.LastTransitionTime = p.LastTransitionTime
			}
		}
		return c
	}
	initReason := "ContainersNotInitialized"
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		initReason = "PodCompleted"
	}
	st.Conditions = []corev1.PodCondition{
		cond(corev1.PodInitialized, initialized || (st.Phase == corev1.PodSucceeded), initReason),
		cond(corev1.PodReady, ready, readyReason),
		cond(corev1.ContainersReady, ready, readyReason),
		cond(corev1.PodScheduled, true, ""),
	}
	return st
}

// qosClass is the pod's QoS class (Guaranteed, Burstable, BestEffort).
func qosClass(pod *corev1.Pod) corev1.PodQOSClass {
	all := append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...)
	any, guaranteed := false, true
	for _, c := range all {
		if len(c.Resources.Requests) > 0 || len(c.Resources.Limits) > 0 {
			any = true
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			lim, ok := c.Resources.Limits[r]
			if !ok {
				guaranteed = false
				continue
			}
			if req, ok := c.Resources.Requests[r]; ok && req.Cmp(lim) != 0 {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	default:
		return corev1.PodQOSBurstable
	}
}

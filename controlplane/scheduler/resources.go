package scheduler

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Scoring counts a container that requests no cpu or memory as asking
// for these (kube-scheduler's non-zero defaults), so pods without
// requests still spread instead of piling onto the first node.
const (
	defaultMilliCPURequest = 100               // 0.1 core
	defaultMemoryRequest   = 200 * 1024 * 1024 // 200 MiB
)

// resources is an amount of node resources in the units the filters
// compare: millicores, bytes, and integer counts for the rest.
type resources struct {
	milliCPU  int64
	memory    int64
	ephemeral int64
	// scalar holds extended resources and hugepages.
	scalar map[corev1.ResourceName]int64
}

func (r *resources) add(o resources) {
	r.milliCPU += o.milliCPU
	r.memory += o.memory
	r.ephemeral += o.ephemeral
	for k, v := range o.scalar {
		if r.scalar == nil {
			r.scalar = map[corev1.ResourceName]int64{}
		}
		r.scalar[k] += v
	}
}

func (r *resources) sub(o resources) {
	r.milliCPU -= o.milliCPU
	r.memory -= o.memory
	r.ephemeral -= o.ephemeral
	for k, v := range o.scalar {
		if r.scalar != nil {
			r.scalar[k] -= v
			if r.scalar[k] == 0 {
				delete(r.scalar, k)
			}
		}
	}
}

// max raises each amount of r to o's where o's is larger.
func (r *resources) max(o resources) {
	r.milliCPU = max(r.milliCPU, o.milliCPU)
	r.memory = max(r.memory, o.memory)
	r.ephemeral = max(r.ephemeral, o.ephemeral)
	for k, v := range o.scalar {
		if r.scalar == nil {
			r.scalar = map[corev1.ResourceName]int64{}
		}
		r.scalar[k] = max(r.scalar[k], v)
	}
}

// resourcesOf reads a resource list; pods (a count, not an amount) is
// left out.
func resourcesOf(l corev1.ResourceList) resources {
	var r resources
	for name, q := range l {
		switch name {
		case corev1.ResourceCPU:
			r.milliCPU = q.MilliValue()
		case corev1.ResourceMemory:
			r.memory = q.Value()
		case corev1.ResourceEphemeralStorage:
			r.ephemeral = q.Value()
		case corev1.ResourcePods:
		default:
			if r.scalar == nil {
				r.scalar = map[corev1.ResourceName]int64{}
			}
			r.scalar[name] = q.Value()
		}
	}
	return r
}

// containerRequests is what one container asks for; with nonZero, cpu
// and memory it does not name count as the scoring defaults.
func containerRequests(c *corev1.Container, nonZero bool) resources {
	r := resourcesOf(c.Resources.Requests)
	if nonZero {
		if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
			r.milliCPU = defaultMilliCPURequest
		}
		if _, ok := c.Resources.Requests[corev1.ResourceMemory]; !ok {
			r.memory = defaultMemoryRequest
		}
	}
	return r
}

// podRequests is what a pod holds on its node while it runs, as the
// kubelet admits it: the app containers plus restartable init
// containers (sidecars) together, or an init container plus the
// sidecars started before it, whichever is larger; then the pod
// overhead. Pod-level requests, where given, replace the containers'
// cpu and memory.
func podRequests(pod *corev1.Pod, nonZero bool) resources {
	var apps resources
	for i := range pod.Spec.Containers {
		apps.add(containerRequests(&pod.Spec.Containers[i], nonZero))
	}
	var sidecars, initMax resources
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		r := containerRequests(c, nonZero)
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars.add(r)
			initMax.max(sidecars)
			continue
		}
		r.add(sidecars)
		initMax.max(r)
	}
	apps.add(sidecars)
	apps.max(initMax)
	if pr := pod.Spec.Resources; pr != nil {
		if q, ok := pr.Requests[corev1.ResourceCPU]; ok {
			apps.milliCPU = q.MilliValue()
		}
		if q, ok := pr.Requests[corev1.ResourceMemory]; ok {
			apps.memory = q.Value()
		}
	}
	apps.add(resourcesOf(pod.Spec.Overhead))
	return apps
}

// hostPort is one port a pod takes on its node's addresses.
type hostPort struct {
	ip       string // "" for every address
	protocol corev1.Protocol
	port     int32
}

func podHostPorts(pod *corev1.Pod) []hostPort {
	var out []hostPort
	add := func(cs []corev1.Container) {
		for i := range cs {
			for _, p := range cs[i].Ports {
				if p.HostPort <= 0 {
					continue
				}
				hp := hostPort{ip: p.HostIP, protocol: p.Protocol, port: p.HostPort}
				if hp.protocol == "" {
					hp.protocol = corev1.ProtocolTCP
				}
				if hp.ip == "0.0.0.0" || hp.ip == "::" {
					hp.ip = ""
				}
				out = append(out, hp)
			}
		}
	}
	add(pod.Spec.InitContainers)
	add(pod.Spec.Containers)
	return out
}

// podInfo is what the scheduler reads of a pod, computed once: for the
// pod being placed and for every pod a node holds.
type podInfo struct {
	pod *corev1.Pod
	// req is what the filters charge the node; nonZero is what the
	// scores charge it (cpu and memory with the defaults).
	req, nonZero resources
	ports        []hostPort
	// spread names the groups the pod spreads with: its controller and
	// each Service that selects it.
	spread []string
}

func newPodInfo(pod *corev1.Pod, services []*corev1.Service) *podInfo {
	return &podInfo{
		pod:     pod,
		req:     podRequests(pod, false),
		nonZero: podRequests(pod, true),
		ports:   podHostPorts(pod),
		spread:  spreadKeys(pod, services),
	}
}

// spreadKeys names the pod's controller (ReplicaSet, StatefulSet, Job…)
// and the Services in its namespace whose selector picks it.
func spreadKeys(pod *corev1.Pod, services []*corev1.Service) []string {
	var keys []string
	if ref := metav1.GetControllerOf(pod); ref != nil {
		keys = append(keys, "owner/"+string(ref.UID))
	}
	for _, svc := range services {
		if svc.Namespace != pod.Namespace || len(svc.Spec.Selector) == 0 {
			continue
		}
		if labels.SelectorFromValidatedSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			keys = append(keys, "service/"+svc.Namespace+"/"+svc.Name)
		}
	}
	return keys
}

// terminal pods hold nothing on their node.
func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

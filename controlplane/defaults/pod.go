package defaults

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Priorities of the two PriorityClasses every Kubernetes cluster has; weir
// has no PriorityClass objects, so these are the only names it can resolve.
const (
	systemClusterCritical = 2000000000
	systemNodeCritical    = 2000001000

	// defaultTolerationSeconds is how long a pod stays bound to a node that
	// went not-ready or unreachable (kube-apiserver's
	// --default-not-ready-toleration-seconds and
	// --default-unreachable-toleration-seconds).
	defaultTolerationSeconds = 300
)

// DefaultPodSpec sets the defaults Kubernetes gives every PodSpec, whether in
// a Pod or in a workload's pod template: restart, DNS and scheduler policy,
// grace period, security context, and the defaults of containers, ports,
// probes, lifecycle hooks, environment and volumes. It leaves out what only a
// Pod gets (requests from limits, enableServiceLinks, host ports under
// hostNetwork, priority, tolerations, status), as kube-apiserver does, so a
// Deployment's template reads back the way kubectl shows it there.
func DefaultPodSpec(spec *corev1.PodSpec) {
	if spec.DNSPolicy == "" {
		spec.DNSPolicy = corev1.DNSClusterFirst
	}
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = corev1.RestartPolicyAlways
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	if spec.TerminationGracePeriodSeconds == nil {
		spec.TerminationGracePeriodSeconds = new(int64(corev1.DefaultTerminationGracePeriodSeconds))
	}
	if spec.SchedulerName == "" {
		spec.SchedulerName = corev1.DefaultSchedulerName
	}
	// serviceAccount is the deprecated spelling of serviceAccountName; the
	// round trip through kube-apiserver's internal type makes them equal.
	if spec.ServiceAccountName == "" {
		spec.ServiceAccountName = spec.DeprecatedServiceAccount
	}
	spec.DeprecatedServiceAccount = spec.ServiceAccountName

	for i := range spec.Volumes {
		defaultVolume(&spec.Volumes[i])
	}
	for i := range spec.InitContainers {
		defaultContainer(&spec.InitContainers[i])
	}
	for i := range spec.Containers {
		defaultContainer(&spec.Containers[i])
	}
	for i := range spec.EphemeralContainers {
		defaultContainer((*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon))
	}
	if spec.Resources != nil {
		roundResources(spec.Resources)
	}
	roundResourceList(spec.Overhead)
}

func defaultPod(pod *corev1.Pod) {
	DefaultPodSpec(&pod.Spec)
	spec := &pod.Spec

	// Only Pods get requests from limits: a template must keep saying what
	// its author wrote, the Pod made from it says what will be enforced.
	for i := range spec.Containers {
		requestsFromLimits(&spec.Containers[i].Resources)
	}
	for i := range spec.InitContainers {
		requestsFromLimits(&spec.InitContainers[i].Resources)
	}
	if spec.EnableServiceLinks == nil {
		spec.EnableServiceLinks = new(corev1.DefaultEnableServiceLinks)
	}
	if spec.HostNetwork {
		hostPortsFromContainerPorts(spec.Containers)
		hostPortsFromContainerPorts(spec.InitContainers)
	}
	defaultPriority(spec)
	defaultTolerations(spec)

	if pod.Status.Phase == "" {
		pod.Status.Phase = corev1.PodPending
	}
	if pod.Status.QOSClass == "" {
		pod.Status.QOSClass = qosClass(spec)
	}
	// podIP/hostIP are the single-value spellings of podIPs/hostIPs.
	if len(pod.Status.PodIPs) == 0 && pod.Status.PodIP != "" {
		pod.Status.PodIPs = []corev1.PodIP{{IP: pod.Status.PodIP}}
	}
	if pod.Status.PodIP == "" && len(pod.Status.PodIPs) > 0 {
		pod.Status.PodIP = pod.Status.PodIPs[0].IP
	}
	if len(pod.Status.HostIPs) == 0 && pod.Status.HostIP != "" {
		pod.Status.HostIPs = []corev1.HostIP{{IP: pod.Status.HostIP}}
	}
	if pod.Status.HostIP == "" && len(pod.Status.HostIPs) > 0 {
		pod.Status.HostIP = pod.Status.HostIPs[0].IP
	}
}

// defaultPriority does what kube-apiserver's Priority admission plugin does
// for a cluster without a global-default PriorityClass.
func defaultPriority(spec *corev1.PodSpec) {
	if spec.Priority == nil {
		switch spec.PriorityClassName {
		case "":
			spec.Priority = new(int32(0))
		case "system-cluster-critical":
			spec.Priority = new(int32(systemClusterCritical))
		case "system-node-critical":
			spec.Priority = new(int32(systemNodeCritical))
		}
	}
	if spec.PreemptionPolicy == nil && spec.Priority != nil {
		spec.PreemptionPolicy = new(corev1.PreemptLowerPriority)
	}
}

// defaultTolerations does what the DefaultTolerationSeconds admission plugin
// does: a pod rides out a short node outage instead of being evicted the
// moment the node-lifecycle controller taints the node.
func defaultTolerations(spec *corev1.PodSpec) {
	var notReady, unreachable bool
	for _, t := range spec.Tolerations {
		if t.Effect != corev1.TaintEffectNoExecute && t.Effect != "" {
			continue
		}
		if t.Key == corev1.TaintNodeNotReady || t.Key == "" {
			notReady = true
		}
		if t.Key == corev1.TaintNodeUnreachable || t.Key == "" {
			unreachable = true
		}
	}
	if !notReady {
		spec.Tolerations = append(spec.Tolerations, corev1.Toleration{
			Key:               corev1.TaintNodeNotReady,
			Operator:          corev1.TolerationOpExists,
			Effect:            corev1.TaintEffectNoExecute,
			TolerationSeconds: new(int64(defaultTolerationSeconds)),
		})
	}
	if !unreachable {
		spec.Tolerations = append(spec.Tolerations, corev1.Toleration{
			Key:               corev1.TaintNodeUnreachable,
			Operator:          corev1.TolerationOpExists,
			Effect:            corev1.TaintEffectNoExecute,
			TolerationSeconds: new(int64(defaultTolerationSeconds)),
		})
	}
}

func defaultContainer(c *corev1.Container) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = pullPolicyFor(c.Image)
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = corev1.ProtocolTCP
		}
	}
	for i := range c.Env {
		if vf := c.Env[i].ValueFrom; vf != nil && vf.FieldRef != nil && vf.FieldRef.APIVersion == "" {
			vf.FieldRef.APIVersion = "v1"
		}
	}
	defaultProbe(c.LivenessProbe)
	defaultProbe(c.ReadinessProbe)
	defaultProbe(c.StartupProbe)
	if c.Lifecycle != nil {
		defaultLifecycleHandler(c.Lifecycle.PostStart)
		defaultLifecycleHandler(c.Lifecycle.PreStop)
	}
	roundResources(&c.Resources)
}

func defaultProbe(p *corev1.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	defaultHTTPGet(p.HTTPGet)
	if p.GRPC != nil && p.GRPC.Service == nil {
		p.GRPC.Service = new("")
	}
}

func defaultLifecycleHandler(h *corev1.LifecycleHandler) {
	if h != nil {
		defaultHTTPGet(h.HTTPGet)
	}
}

func defaultHTTPGet(h *corev1.HTTPGetAction) {
	if h == nil {
		return
	}
	if h.Path == "" {
		h.Path = "/"
	}
	if h.Scheme == "" {
		h.Scheme = corev1.URISchemeHTTP
	}
}

func defaultVolume(v *corev1.Volume) {
	src := &v.VolumeSource
	if volumeSourceEmpty(src) {
		src.EmptyDir = &corev1.EmptyDirVolumeSource{}
	}
	if src.Secret != nil && src.Secret.DefaultMode == nil {
		src.Secret.DefaultMode = new(corev1.SecretVolumeSourceDefaultMode)
	}
	if src.ConfigMap != nil && src.ConfigMap.DefaultMode == nil {
		src.ConfigMap.DefaultMode = new(corev1.ConfigMapVolumeSourceDefaultMode)
	}
	if src.DownwardAPI != nil {
		if src.DownwardAPI.DefaultMode == nil {
			src.DownwardAPI.DefaultMode = new(corev1.DownwardAPIVolumeSourceDefaultMode)
		}
		defaultDownwardAPIFiles(src.DownwardAPI.Items)
	}
	if src.Projected != nil {
		if src.Projected.DefaultMode == nil {
			src.Projected.DefaultMode = new(corev1.ProjectedVolumeSourceDefaultMode)
		}
		for i := range src.Projected.Sources {
			ps := &src.Projected.Sources[i]
			if ps.ServiceAccountToken != nil && ps.ServiceAccountToken.ExpirationSeconds == nil {
				ps.ServiceAccountToken.ExpirationSeconds = new(int64(3600))
			}
			if ps.DownwardAPI != nil {
				defaultDownwardAPIFiles(ps.DownwardAPI.Items)
			}
		}
	}
	if src.HostPath != nil && src.HostPath.Type == nil {
		src.HostPath.Type = new(corev1.HostPathUnset)
	}
	if src.Image != nil && src.Image.PullPolicy == "" {
		src.Image.PullPolicy = pullPolicyFor(src.Image.Reference)
	}
	if src.Ephemeral != nil && src.Ephemeral.VolumeClaimTemplate != nil {
		defaultPVCSpec(&src.Ephemeral.VolumeClaimTemplate.Spec)
	}
}

func defaultDownwardAPIFiles(items []corev1.DownwardAPIVolumeFile) {
	for i := range items {
		if items[i].FieldRef != nil && items[i].FieldRef.APIVersion == "" {
			items[i].FieldRef.APIVersion = "v1"
		}
	}
}

func defaultPVCSpec(spec *corev1.PersistentVolumeClaimSpec) {
	if spec.VolumeMode == nil {
		spec.VolumeMode = new(corev1.PersistentVolumeFilesystem)
	}
}

// volumeSourceEmpty reports whether no volume type is set; such a volume
// becomes an emptyDir, as in Kubernetes.
func volumeSourceEmpty(s *corev1.VolumeSource) bool {
	return *s == corev1.VolumeSource{}
}

func requestsFromLimits(r *corev1.ResourceRequirements) {
	if r.Limits == nil {
		return
	}
	if r.Requests == nil {
		r.Requests = make(corev1.ResourceList, len(r.Limits))
	}
	for name, q := range r.Limits {
		if _, ok := r.Requests[name]; !ok {
			r.Requests[name] = q.DeepCopy()
		}
	}
}

func hostPortsFromContainerPorts(cs []corev1.Container) {
	for i := range cs {
		for j := range cs[i].Ports {
			if cs[i].Ports[j].HostPort == 0 {
				cs[i].Ports[j].HostPort = cs[i].Ports[j].ContainerPort
			}
		}
	}
}

func roundResources(r *corev1.ResourceRequirements) {
	roundResourceList(r.Limits)
	roundResourceList(r.Requests)
}

// roundResourceList rounds every quantity up to milli precision, as
// Kubernetes does, so "0.0001" CPU reads back as "1m" rather than as a value
// the scheduler cannot represent.
func roundResourceList(l corev1.ResourceList) {
	for name, q := range l {
		q.RoundUp(resource.Milli)
		l[name] = q
	}
}

// qosClass computes the Pod's QoS class the way kube-apiserver records it in
// status.qosClass on create.
func qosClass(spec *corev1.PodSpec) corev1.PodQOSClass {
	requests := corev1.ResourceList{}
	limits := corev1.ResourceList{}
	zero := resource.Quantity{}
	isGuaranteed := true
	qosResources := map[corev1.ResourceName]bool{corev1.ResourceCPU: true, corev1.ResourceMemory: true}

	if spec.Resources != nil {
		// Pod-level resources, when set, decide on their own.
		r := spec.Resources
		for name, q := range r.Requests {
			if qosResources[name] && q.Cmp(zero) == 1 {
				requests[name] = q
			}
		}
		for name, q := range r.Limits {
			if qosResources[name] && q.Cmp(zero) == 1 {
				limits[name] = q
			}
		}
		if len(requests) > 0 || len(limits) > 0 {
			return classify(requests, limits, len(limits) == len(qosResources))
		}
	}

	all := make([]corev1.Container, 0, len(spec.Containers)+len(spec.InitContainers))
	all = append(all, spec.Containers...)
	all = append(all, spec.InitContainers...)
	for _, c := range all {
		for name, q := range c.Resources.Requests {
			if !qosResources[name] || q.Cmp(zero) != 1 {
				continue
			}
			sum := requests[name]
			sum.Add(q)
			requests[name] = sum
		}
		seen := 0
		for name, q := range c.Resources.Limits {
			if !qosResources[name] || q.Cmp(zero) != 1 {
				continue
			}
			seen++
			sum := limits[name]
			sum.Add(q)
			limits[name] = sum
		}
		if seen != len(qosResources) {
			isGuaranteed = false
		}
	}
	return classify(requests, limits, isGuaranteed)
}

func classify(requests, limits corev1.ResourceList, allLimitsSet bool) corev1.PodQOSClass {
	if len(requests) == 0 && len(limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	if !allLimitsSet {
		return corev1.PodQOSBurstable
	}
	for name, req := range requests {
		lim, ok := limits[name]
		if !ok || lim.Cmp(req) != 0 {
			return corev1.PodQOSBurstable
		}
	}
	if len(requests) != len(limits) {
		return corev1.PodQOSBurstable
	}
	return corev1.PodQOSGuaranteed
}

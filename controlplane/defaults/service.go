package defaults

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func defaultService(svc *corev1.Service) {
	spec := &svc.Spec
	if spec.SessionAffinity == "" {
		spec.SessionAffinity = corev1.ServiceAffinityNone
	}
	switch spec.SessionAffinity {
	case corev1.ServiceAffinityNone:
		spec.SessionAffinityConfig = nil
	case corev1.ServiceAffinityClientIP:
		c := spec.SessionAffinityConfig
		if c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil {
			spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{
				ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: new(corev1.DefaultClientIPServiceAffinitySeconds)},
			}
		}
	}
	if spec.Type == "" {
		spec.Type = corev1.ServiceTypeClusterIP
	}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.TargetPort == intstr.FromInt32(0) || p.TargetPort == intstr.FromString("") {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	if externallyAccessible(svc) && spec.ExternalTrafficPolicy == "" {
		spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	if spec.InternalTrafficPolicy == nil {
		switch spec.Type {
		case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
			spec.InternalTrafficPolicy = new(corev1.ServiceInternalTrafficPolicyCluster)
		}
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer {
		if spec.AllocateLoadBalancerNodePorts == nil {
			spec.AllocateLoadBalancerNodePorts = new(true)
		}
		for i := range svc.Status.LoadBalancer.Ingress {
			ing := &svc.Status.LoadBalancer.Ingress[i]
			if ing.IP != "" && ing.IPMode == nil {
				ing.IPMode = new(corev1.LoadBalancerIPModeVIP)
			}
		}
	}

	// An old client writes only clusterIP; the registry mirrors it into
	// clusterIPs, the field everything else reads.
	if spec.ClusterIP != "" && len(spec.ClusterIPs) == 0 {
		spec.ClusterIPs = []string{spec.ClusterIP}
	}
	defaultIPFamilies(spec)
}

// defaultIPFamilies fills ipFamilyPolicy and ipFamilies the way
// kube-apiserver's service allocator does on a single-stack IPv4 cluster,
// which is what weir runs. ExternalName services have neither.
func defaultIPFamilies(spec *corev1.ServiceSpec) {
	if spec.Type == corev1.ServiceTypeExternalName {
		return
	}
	headlessNoSelector := spec.ClusterIP == corev1.ClusterIPNone && len(spec.Selector) == 0
	if spec.IPFamilyPolicy == nil {
		if headlessNoSelector {
			// Kubernetes lets a selectorless headless service carry
			// endpoints of either family.
			spec.IPFamilyPolicy = new(corev1.IPFamilyPolicyRequireDualStack)
		} else {
			spec.IPFamilyPolicy = new(corev1.IPFamilyPolicySingleStack)
		}
	}
	for i, ip := range spec.ClusterIPs {
		if ip == corev1.ClusterIPNone {
			break
		}
		if i < len(spec.IPFamilies) {
			continue
		}
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			// Validation reports the bad address.
			break
		}
		if addr.Unmap().Is4() {
			spec.IPFamilies = append(spec.IPFamilies, corev1.IPv4Protocol)
		} else {
			spec.IPFamilies = append(spec.IPFamilies, corev1.IPv6Protocol)
		}
	}
	if len(spec.IPFamilies) == 0 {
		spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	}
	if headlessNoSelector && len(spec.IPFamilies) == 1 && *spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack {
		if spec.IPFamilies[0] == corev1.IPv4Protocol {
			spec.IPFamilies = append(spec.IPFamilies, corev1.IPv6Protocol)
		} else {
			spec.IPFamilies = append(spec.IPFamilies, corev1.IPv4Protocol)
		}
	}
}

// DefaultServiceUpdate carries out what kube-apiserver's Service storage
// does between defaulting and validating an update. It keeps the cluster IPs,
// node ports and health-check node port a client left out (a PUT of the
// original manifest must not look like a request to release them), reconciles
// clusterIP with clusterIPs as an old client meant them, keeps the IP family
// policy a client left out, and drops the fields the new type no longer uses
// when the client merely carried them over from the stored object (a NodePort
// turned ClusterIP loses its node ports, a service turned ExternalName its
// cluster IPs). Call it after Default(svc) and before validating. old is not
// modified.
func DefaultServiceUpdate(svc, old *corev1.Service) {
	patchAllocatedValues(svc, old)
	normalizeClusterIPs(svc, old)
	if svc.Spec.IPFamilyPolicy == nil && old.Spec.IPFamilyPolicy != nil && svc.Spec.Type != corev1.ServiceTypeExternalName {
		svc.Spec.IPFamilyPolicy = new(*old.Spec.IPFamilyPolicy)
	}
	dropTypeDependentFields(svc, old)
}

func patchAllocatedValues(svc, old *corev1.Service) {
	n, o := &svc.Spec, &old.Spec
	if n.Type != corev1.ServiceTypeExternalName && o.Type != corev1.ServiceTypeExternalName {
		if n.ClusterIP == "" {
			n.ClusterIP = o.ClusterIP
		}
		if len(n.ClusterIPs) == 0 && len(o.ClusterIPs) > 0 {
			n.ClusterIPs = slices.Clone(o.ClusterIPs)
		}
	}
	if needsNodePorts(n.Type) && needsNodePorts(o.Type) {
		// A node port the client gave to another port stays there; the
		// others are matched to the old ports by name.
		inUse := map[int32]bool{}
		for _, p := range n.Ports {
			if p.NodePort != 0 {
				inUse[p.NodePort] = true
			}
		}
		byName := map[string]int32{}
		for _, p := range o.Ports {
			byName[p.Name] = p.NodePort
		}
		for i := range n.Ports {
			if p := &n.Ports[i]; p.NodePort == 0 && !inUse[byName[p.Name]] {
				p.NodePort = byName[p.Name]
			}
		}
	}
	if needsHealthCheck(svc) && needsHealthCheck(old) && n.HealthCheckNodePort == 0 {
		n.HealthCheckNodePort = o.HealthCheckNodePort
	}
}

func normalizeClusterIPs(svc, old *corev1.Service) {
	n, o := &svc.Spec, &old.Spec
	// A client that patched another field and did not send clusterIPs.
	if len(o.ClusterIPs) > 0 && len(n.ClusterIPs) == 0 && o.ClusterIP == n.ClusterIP {
		n.ClusterIPs = slices.Clone(o.ClusterIPs)
	}
	if o.ClusterIP != n.ClusterIP {
		if o.ClusterIP != "" && n.ClusterIP == "" && slices.Equal(o.ClusterIPs, n.ClusterIPs) {
			n.ClusterIPs = nil
		}
		// Only the singular field changed: the client meant it.
		if slices.Equal(o.ClusterIPs, n.ClusterIPs) && n.ClusterIP != "" {
			n.ClusterIPs = []string{n.ClusterIP}
		}
	}
}

func dropTypeDependentFields(svc, old *corev1.Service) {
	n, o := &svc.Spec, &old.Spec
	if o.Type != corev1.ServiceTypeExternalName && n.Type == corev1.ServiceTypeExternalName {
		if n.ClusterIP == o.ClusterIP && slices.Equal(n.ClusterIPs, o.ClusterIPs) {
			n.ClusterIP = ""
			n.ClusterIPs = nil
		}
		if slices.Equal(n.IPFamilies, o.IPFamilies) {
			n.IPFamilies = nil
		}
		if ptrEqual(n.IPFamilyPolicy, o.IPFamilyPolicy) {
			n.IPFamilyPolicy = nil
		}
		if ptrEqual(n.InternalTrafficPolicy, o.InternalTrafficPolicy) {
			n.InternalTrafficPolicy = nil
		}
	}
	if needsNodePorts(o.Type) && !needsNodePorts(n.Type) && sameNodePorts(n.Ports, o.Ports) {
		for i := range n.Ports {
			n.Ports[i].NodePort = 0
		}
	}
	if needsHealthCheck(old) && !needsHealthCheck(svc) && n.HealthCheckNodePort == o.HealthCheckNodePort {
		n.HealthCheckNodePort = 0
	}
	if o.Type == corev1.ServiceTypeLoadBalancer && n.Type != corev1.ServiceTypeLoadBalancer {
		if ptrEqual(n.AllocateLoadBalancerNodePorts, o.AllocateLoadBalancerNodePorts) {
			n.AllocateLoadBalancerNodePorts = nil
		}
		if ptrEqual(n.LoadBalancerClass, o.LoadBalancerClass) {
			n.LoadBalancerClass = nil
		}
	}
	if externallyAccessible(old) && !externallyAccessible(svc) && n.ExternalTrafficPolicy == o.ExternalTrafficPolicy {
		n.ExternalTrafficPolicy = ""
	}
}

// needsHealthCheck reports whether the service gets a health-check node
// port: only a LoadBalancer that keeps traffic on the receiving node does.
func needsHealthCheck(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

func needsNodePorts(t corev1.ServiceType) bool {
	return t == corev1.ServiceTypeNodePort || t == corev1.ServiceTypeLoadBalancer
}

func sameNodePorts(a, b []corev1.ServicePort) bool {
	for _, p := range a {
		if p.NodePort == 0 {
			continue
		}
		found := false
		for _, q := range b {
			if q.NodePort == p.NodePort {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func ptrEqual[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// externallyAccessible is Kubernetes' test for services that take traffic
// from outside the cluster and so have an externalTrafficPolicy.
func externallyAccessible(svc *corev1.Service) bool {
	switch svc.Spec.Type {
	case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeClusterIP:
		return len(svc.Spec.ExternalIPs) > 0
	}
	return false
}

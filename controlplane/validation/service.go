package validation

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxClientIPAffinitySeconds is the longest ClientIP session affinity
// Kubernetes allows: one day.
const maxClientIPAffinitySeconds = 86400

var (
	supportedServiceTypes = []corev1.ServiceType{
		corev1.ServiceTypeClusterIP, corev1.ServiceTypeExternalName,
		corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort,
	}
	supportedSessionAffinity = []corev1.ServiceAffinity{corev1.ServiceAffinityClientIP, corev1.ServiceAffinityNone}
	supportedIPFamilies      = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	supportedIPFamilyPolicy  = []corev1.IPFamilyPolicy{
		corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack, corev1.IPFamilyPolicySingleStack,
	}
	supportedExternalTrafficPolicy = []corev1.ServiceExternalTrafficPolicy{corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal}
	supportedInternalTrafficPolicy = []corev1.ServiceInternalTrafficPolicy{corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal}
)

func isHeadless(svc *corev1.Service) bool {
	return len(svc.Spec.ClusterIPs) == 1 && svc.Spec.ClusterIPs[0] == corev1.ClusterIPNone
}

func externallyAccessible(svc *corev1.Service) bool {
	switch svc.Spec.Type {
	case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeClusterIP:
		return len(svc.Spec.ExternalIPs) > 0
	}
	return false
}

func needsHealthCheck(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

func validateService(svc, old *corev1.Service) field.ErrorList {
	errs := validateMeta(&svc.ObjectMeta, oldMeta(old), true, nameIsDNS1035Label, field.NewPath("metadata"))
	specPath := field.NewPath("spec")
	spec := &svc.Spec
	headless := isHeadless(svc)

	// A selectorless headless Service may have no ports: its endpoints are
	// whatever its owner writes.
	if len(spec.Ports) == 0 && !headless && spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Required(specPath.Child("ports"), ""))
	}
	switch spec.Type {
	case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort:
		if headless {
			errs = append(errs, field.Invalid(specPath.Child("clusterIPs").Index(0), spec.ClusterIPs[0], fmt.Sprintf("may not be set to 'None' for %s services", spec.Type)))
		}
	case corev1.ServiceTypeExternalName:
		if len(spec.ClusterIPs) > 0 {
			errs = append(errs, field.Forbidden(specPath.Child("clusterIPs"), "may not be set for ExternalName services"))
		}
		if len(spec.IPFamilies) > 0 {
			errs = append(errs, field.Forbidden(specPath.Child("ipFamilies"), "may not be set for ExternalName services"))
		}
		if spec.IPFamilyPolicy != nil {
			errs = append(errs, field.Forbidden(specPath.Child("ipFamilyPolicy"), "may not be set for ExternalName services"))
		}
		// The name is a CNAME target and may end in a dot.
		if cname := strings.TrimSuffix(spec.ExternalName, "."); cname != "" {
			errs = append(errs, validateDNS1123Subdomain(cname, specPath.Child("externalName"))...)
		} else {
			errs = append(errs, field.Required(specPath.Child("externalName"), ""))
		}
	}

	portNames := map[string]bool{}
	portsPath := specPath.Child("ports")
	for i := range spec.Ports {
		errs = append(errs, validateServicePort(&spec.Ports[i], len(spec.Ports) > 1, portNames, portsPath.Index(i))...)
	}
	if spec.Selector != nil {
		errs = append(errs, metavalidation.ValidateLabels(spec.Selector, specPath.Child("selector"))...)
	}

	switch spec.SessionAffinity {
	case "":
		errs = append(errs, field.Required(specPath.Child("sessionAffinity"), ""))
	case corev1.ServiceAffinityClientIP:
		errs = append(errs, validateClientIPAffinity(spec.SessionAffinityConfig, specPath.Child("sessionAffinityConfig"))...)
	case corev1.ServiceAffinityNone:
		if spec.SessionAffinityConfig != nil {
			errs = append(errs, field.Forbidden(specPath.Child("sessionAffinityConfig"), fmt.Sprintf("must not be set when session affinity is %s", corev1.ServiceAffinityNone)))
		}
	default:
		errs = append(errs, field.NotSupported(specPath.Child("sessionAffinity"), spec.SessionAffinity, supportedSessionAffinity))
	}

	errs = append(errs, validateClusterIPFields(svc)...)

	for i, ip := range spec.ExternalIPs {
		p := specPath.Child("externalIPs").Index(i)
		if ipErrs := validateIP(ip, p); len(ipErrs) != 0 {
			errs = append(errs, ipErrs...)
		} else {
			errs = append(errs, validateNonSpecialIP(ip, p)...)
		}
	}

	switch {
	case spec.Type == "":
		errs = append(errs, field.Required(specPath.Child("type"), ""))
	case !slices.Contains(supportedServiceTypes, spec.Type):
		errs = append(errs, field.NotSupported(specPath.Child("type"), spec.Type, supportedServiceTypes))
	}

	// Node ports exist only where a Service is reachable on every node. The
	// allocator, not validation, checks they are in the node-port range.
	for i, p := range spec.Ports {
		if p.NodePort == 0 {
			continue
		}
		np := portsPath.Index(i).Child("nodePort")
		switch spec.Type {
		case corev1.ServiceTypeClusterIP, corev1.ServiceTypeExternalName:
			errs = append(errs, field.Forbidden(np, fmt.Sprintf("may not be used when `type` is '%s'", spec.Type)))
		default:
			for _, msg := range validation.IsValidPortNum(int(p.NodePort)) {
				errs = append(errs, field.Invalid(np, p.NodePort, msg))
			}
		}
	}

	type protoPort struct {
		proto corev1.Protocol
		port  int32
	}
	nodePorts, ports := map[protoPort]bool{}, map[protoPort]bool{}
	for i, p := range spec.Ports {
		if p.NodePort != 0 {
			k := protoPort{p.Protocol, p.NodePort}
			if nodePorts[k] {
				errs = append(errs, field.Duplicate(portsPath.Index(i).Child("nodePort"), p.NodePort))
			}
			nodePorts[k] = true
		}
		k := protoPort{p.Protocol, p.Port}
		if ports[k] {
			errs = append(errs, field.Duplicate(portsPath.Index(i), corev1.ServicePort{Protocol: p.Protocol, Port: p.Port}))
		}
		ports[k] = true
	}

	if len(spec.LoadBalancerSourceRanges) > 0 {
		p := specPath.Child("LoadBalancerSourceRanges")
		if spec.Type != corev1.ServiceTypeLoadBalancer {
			errs = append(errs, field.Forbidden(p, "may only be used when `type` is 'LoadBalancer'"))
		}
		for i, r := range spec.LoadBalancerSourceRanges {
			errs = append(errs, validation.IsValidCIDR(p.Index(i), strings.TrimSpace(r))...)
		}
	}
	if spec.AllocateLoadBalancerNodePorts != nil && spec.Type != corev1.ServiceTypeLoadBalancer {
		errs = append(errs, field.Forbidden(specPath.Child("allocateLoadBalancerNodePorts"), "may only be used when `type` is 'LoadBalancer'"))
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer && spec.AllocateLoadBalancerNodePorts == nil {
		errs = append(errs, field.Required(specPath.Child("allocateLoadBalancerNodePorts"), ""))
	}
	errs = append(errs, validateLoadBalancerClass(svc, old)...)
	errs = append(errs, validateTrafficPolicies(svc)...)

	if old != nil {
		errs = append(errs, validateServiceUpdate(svc, old)...)
	}
	return errs
}

func validateServicePort(sp *corev1.ServicePort, requireName bool, names map[string]bool, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if requireName && sp.Name == "" {
		// Endpoints are matched to Service ports by name once there is
		// more than one.
		errs = append(errs, field.Required(fld.Child("name"), ""))
	} else if sp.Name != "" {
		errs = append(errs, validateDNS1123Label(sp.Name, fld.Child("name"))...)
		if names[sp.Name] {
			errs = append(errs, field.Duplicate(fld.Child("name"), sp.Name))
		}
		names[sp.Name] = true
	}
	for _, msg := range validation.IsValidPortNum(int(sp.Port)) {
		errs = append(errs, field.Invalid(fld.Child("port"), sp.Port, msg))
	}
	errs = append(errs, validateProtocol(sp.Protocol, fld.Child("protocol"))...)
	errs = append(errs, validatePortNumOrName(sp.TargetPort, fld.Child("targetPort"))...)
	if sp.AppProtocol != nil {
		errs = append(errs, validateQualifiedName(*sp.AppProtocol, fld.Child("appProtocol"))...)
	}
	return errs
}

func validateClientIPAffinity(c *corev1.SessionAffinityConfig, fld *field.Path) field.ErrorList {
	when := fmt.Sprintf("when session affinity type is %s", corev1.ServiceAffinityClientIP)
	switch {
	case c == nil:
		return field.ErrorList{field.Required(fld, when)}
	case c.ClientIP == nil:
		return field.ErrorList{field.Required(fld.Child("clientIP"), when)}
	case c.ClientIP.TimeoutSeconds == nil:
		return field.ErrorList{field.Required(fld.Child("clientIP", "timeoutSeconds"), when)}
	}
	if t := *c.ClientIP.TimeoutSeconds; t <= 0 || t > maxClientIPAffinitySeconds {
		return field.ErrorList{field.Invalid(fld.Child("clientIP", "timeoutSeconds"), t, fmt.Sprintf("must be greater than 0 and less than %d", maxClientIPAffinitySeconds))}
	}
	return nil
}

// validateClusterIPFields checks clusterIP, clusterIPs, ipFamilies and
// ipFamilyPolicy against each other.
func validateClusterIPFields(svc *corev1.Service) field.ErrorList {
	spec := &svc.Spec
	if spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	var errs field.ErrorList
	specPath := field.NewPath("spec")
	ipsPath := specPath.Child("clusterIPs")
	famPath := specPath.Child("ipFamilies")

	if spec.ClusterIP != "" {
		if len(spec.ClusterIPs) == 0 {
			errs = append(errs, field.Required(ipsPath, ""))
		} else if spec.ClusterIPs[0] != spec.ClusterIP {
			errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "first value must match `clusterIP`"))
		}
	} else if len(spec.ClusterIPs) != 0 {
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "must be empty when `clusterIP` is not specified"))
	}

	seen := map[corev1.IPFamily]bool{}
	for i, f := range spec.IPFamilies {
		if !slices.Contains(supportedIPFamilies, f) {
			errs = append(errs, field.NotSupported(famPath.Index(i), f, supportedIPFamilies))
		}
		if seen[f] {
			errs = append(errs, field.Duplicate(famPath.Index(i), f))
		}
		seen[f] = true
	}
	if p := spec.IPFamilyPolicy; p != nil && !slices.Contains(supportedIPFamilyPolicy, *p) {
		errs = append(errs, field.NotSupported(specPath.Child("ipFamilyPolicy"), *p, supportedIPFamilyPolicy))
	}

	badIPs := false
	for i, ip := range spec.ClusterIPs {
		if i == 0 && ip == corev1.ClusterIPNone {
			if len(spec.ClusterIPs) > 1 {
				badIPs = true
				errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "'None' must be the first and only value"))
			}
			continue
		}
		ipErrs := validateIP(ip, ipsPath.Index(i))
		badIPs = badIPs || len(ipErrs) > 0
		errs = append(errs, ipErrs...)
	}
	if len(spec.ClusterIPs) > 2 {
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "may only hold up to 2 values"))
	}
	if badIPs {
		return errs
	}
	if len(spec.ClusterIPs) == 2 && isIPv6(spec.ClusterIPs[0]) == isIPv6(spec.ClusterIPs[1]) {
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "may specify no more than one IP for each IP family"))
	}
	if !isHeadless(svc) {
		for i, ip := range spec.ClusterIPs {
			if i >= len(spec.IPFamilies) {
				break
			}
			switch {
			case spec.IPFamilies[i] == corev1.IPv4Protocol && isIPv6(ip):
				errs = append(errs, field.Invalid(ipsPath.Index(i), ip, fmt.Sprintf("expected an IPv4 value as indicated by `ipFamilies[%v]`", i)))
			case spec.IPFamilies[i] == corev1.IPv6Protocol && !isIPv6(ip):
				errs = append(errs, field.Invalid(ipsPath.Index(i), ip, fmt.Sprintf("expected an IPv6 value as indicated by `ipFamilies[%v]`", i)))
			}
		}
	}
	if p := spec.IPFamilyPolicy; p != nil && *p == corev1.IPFamilyPolicySingleStack {
		if len(spec.ClusterIPs) == 2 {
			errs = append(errs, field.Invalid(specPath.Child("ipFamilyPolicy"), *p, "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified"))
		}
		if len(spec.IPFamilies) == 2 {
			errs = append(errs, field.Invalid(specPath.Child("ipFamilyPolicy"), *p, "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified"))
		}
	}
	return errs
}

func isIPv6(ip string) bool {
	a, err := netip.ParseAddr(ip)
	return err == nil && a.Is6() && !a.Is4In6()
}

func validateLoadBalancerClass(svc, old *corev1.Service) field.ErrorList {
	p := field.NewPath("spec", "loadBalancerClass")
	cls := svc.Spec.LoadBalancerClass
	isLB := svc.Spec.Type == corev1.ServiceTypeLoadBalancer
	var errs field.ErrorList
	if cls != nil {
		if !isLB {
			errs = append(errs, field.Forbidden(p, "may only be used when `type` is 'LoadBalancer'"))
		}
		errs = append(errs, validateQualifiedName(*cls, p)...)
	}
	// The controller that owns a load balancer cannot hand it to another.
	if old != nil && old.Spec.Type == corev1.ServiceTypeLoadBalancer && isLB {
		if (cls == nil) != (old.Spec.LoadBalancerClass == nil) || (cls != nil && *cls != *old.Spec.LoadBalancerClass) {
			errs = append(errs, field.Invalid(p, cls, "may not change once set"))
		}
	}
	return errs
}

func validateTrafficPolicies(svc *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	spec := &svc.Spec
	specPath := field.NewPath("spec")
	if !externallyAccessible(svc) {
		if spec.ExternalTrafficPolicy != "" {
			errs = append(errs, field.Invalid(specPath.Child("externalTrafficPolicy"), spec.ExternalTrafficPolicy, "may only be set for externally-accessible services"))
		}
	} else if spec.ExternalTrafficPolicy == "" {
		errs = append(errs, field.Required(specPath.Child("externalTrafficPolicy"), ""))
	} else if !slices.Contains(supportedExternalTrafficPolicy, spec.ExternalTrafficPolicy) {
		errs = append(errs, field.NotSupported(specPath.Child("externalTrafficPolicy"), spec.ExternalTrafficPolicy, supportedExternalTrafficPolicy))
	}
	// healthCheckNodePort 0 on a Local LoadBalancer is left for the server
	// to allocate.
	if !needsHealthCheck(svc) {
		if spec.HealthCheckNodePort != 0 {
			errs = append(errs, field.Invalid(specPath.Child("healthCheckNodePort"), spec.HealthCheckNodePort, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
		}
	} else if spec.HealthCheckNodePort != 0 {
		for _, msg := range validation.IsValidPortNum(int(spec.HealthCheckNodePort)) {
			errs = append(errs, field.Invalid(specPath.Child("healthCheckNodePort"), spec.HealthCheckNodePort, msg))
		}
	}
	if spec.InternalTrafficPolicy == nil {
		switch spec.Type {
		case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
			errs = append(errs, field.Required(specPath.Child("internalTrafficPolicy"), ""))
		}
	} else if !slices.Contains(supportedInternalTrafficPolicy, *spec.InternalTrafficPolicy) {
		errs = append(errs, field.NotSupported(specPath.Child("internalTrafficPolicy"), *spec.InternalTrafficPolicy, supportedInternalTrafficPolicy))
	}
	if td := spec.TrafficDistribution; td != nil {
		valid := []string{corev1.ServiceTrafficDistributionPreferClose, corev1.ServiceTrafficDistributionPreferSameNode, corev1.ServiceTrafficDistributionPreferSameZone}
		if !slices.Contains(valid, *td) {
			errs = append(errs, field.NotSupported(specPath.Child("trafficDistribution"), *td, valid))
		}
	}
	return errs
}

// validateServiceUpdate: the primary cluster IP and family are fixed for the
// Service's life because clients and data planes have cached them, except
// across a change to or from ExternalName, which has none.
func validateServiceUpdate(svc, old *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	n, o := &svc.Spec, &old.Spec
	ipsPath := field.NewPath("spec", "clusterIPs")
	famPath := field.NewPath("spec", "ipFamilies")
	policyPath := field.NewPath("spec", "ipFamilyPolicy")
	singleStack := n.IPFamilyPolicy != nil && *n.IPFamilyPolicy == corev1.IPFamilyPolicySingleStack
	if n.Type == corev1.ServiceTypeExternalName || o.Type == corev1.ServiceTypeExternalName {
		return nil
	}

	if !(isHeadless(old) && isHeadless(svc)) {
		switch {
		case len(o.ClusterIPs) == len(n.ClusterIPs):
			for i, ip := range o.ClusterIPs {
				if ip != n.ClusterIPs[i] {
					errs = append(errs, field.Invalid(ipsPath.Index(i), n.ClusterIPs, "may not change once set"))
				}
			}
		case len(o.ClusterIPs) > len(n.ClusterIPs):
			if len(n.ClusterIPs) == 0 {
				errs = append(errs, field.Invalid(ipsPath.Index(0), n.ClusterIPs, "primary clusterIP can not be unset"))
			} else if n.ClusterIPs[0] != o.ClusterIPs[0] {
				errs = append(errs, field.Invalid(ipsPath.Index(0), n.ClusterIPs, "may not change once set"))
			}
			if len(n.ClusterIPs) == 1 && !singleStack {
				errs = append(errs, field.Invalid(policyPath, n.IPFamilyPolicy, "must be set to 'SingleStack' when releasing the secondary clusterIP"))
			}
		default:
			if len(o.ClusterIPs) > 0 && n.ClusterIPs[0] != o.ClusterIPs[0] {
				errs = append(errs, field.Invalid(ipsPath.Index(0), n.ClusterIPs, "may not change once set"))
			}
		}
	}

	if isHeadless(old) == isHeadless(svc) && !isHeadless(svc) {
		switch {
		case len(o.IPFamilies) == len(n.IPFamilies):
			if !slices.Equal(o.IPFamilies, n.IPFamilies) {
				errs = append(errs, field.Invalid(famPath.Index(0), n.IPFamilies, "may not change once set"))
			}
		case len(o.IPFamilies) > len(n.IPFamilies):
			if len(n.IPFamilies) == 0 {
				errs = append(errs, field.Invalid(famPath.Index(0), n.IPFamilies, "primary ipFamily can not be unset"))
			} else if n.IPFamilies[0] != o.IPFamilies[0] {
				errs = append(errs, field.Invalid(famPath.Index(0), n.IPFamilies, "may not change once set"))
			}
			if len(n.IPFamilies) == 1 && !singleStack {
				errs = append(errs, field.Invalid(policyPath, n.IPFamilyPolicy, "must be set to 'SingleStack' when releasing the secondary ipFamily"))
			}
		default:
			if len(o.IPFamilies) > 0 && n.IPFamilies[0] != o.IPFamilies[0] {
				errs = append(errs, field.Invalid(famPath.Index(0), n.IPFamilies, "may not change once set"))
			}
		}
	}

	if needsHealthCheck(old) && needsHealthCheck(svc) && o.HealthCheckNodePort != 0 && n.HealthCheckNodePort != o.HealthCheckNodePort {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "healthCheckNodePort"), "field is immutable"))
	}
	return errs
}

// validateNonSpecialIP rejects addresses that cannot name a backend or an
// external IP: unspecified, loopback and link-local ones mean "this host".
func validateNonSpecialIP(ip string, fld *field.Path) field.ErrorList {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return field.ErrorList{field.Invalid(fld, ip, "must be a valid IP address")}
	}
	a = a.Unmap()
	var errs field.ErrorList
	if a.IsUnspecified() {
		errs = append(errs, field.Invalid(fld, ip, fmt.Sprintf("may not be unspecified (%v)", ip)))
	}
	if a.IsLoopback() {
		errs = append(errs, field.Invalid(fld, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
	}
	if a.IsLinkLocalUnicast() {
		errs = append(errs, field.Invalid(fld, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
	}
	if a.IsLinkLocalMulticast() {
		errs = append(errs, field.Invalid(fld, ip, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
	}
	return errs
}

func validateEndpoints(ep, old *corev1.Endpoints) field.ErrorList {
	errs := validateMeta(&ep.ObjectMeta, oldMeta(old), true, nameIsDNSSubdomain, field.NewPath("metadata"))
	subsetsPath := field.NewPath("subsets")
	for i := range ep.Subsets {
		ss := &ep.Subsets[i]
		p := subsetsPath.Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			errs = append(errs, field.Required(p, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j := range ss.Addresses {
			errs = append(errs, validateEndpointAddress(&ss.Addresses[j], p.Child("addresses").Index(j))...)
		}
		for j := range ss.NotReadyAddresses {
			errs = append(errs, validateEndpointAddress(&ss.NotReadyAddresses[j], p.Child("notReadyAddresses").Index(j))...)
		}
		for j := range ss.Ports {
			errs = append(errs, validateEndpointPort(&ss.Ports[j], len(ss.Ports) > 1, p.Child("ports").Index(j))...)
		}
	}
	return errs
}

func validateEndpointAddress(a *corev1.EndpointAddress, fld *field.Path) field.ErrorList {
	errs := validateIP(a.IP, fld.Child("ip"))
	if a.Hostname != "" {
		errs = append(errs, validateDNS1123Label(a.Hostname, fld.Child("hostname"))...)
	}
	if a.NodeName != nil {
		errs = append(errs, validateName(*a.NodeName, nameIsDNSSubdomain, fld.Child("nodeName"))...)
	}
	if len(errs) == 0 {
		errs = append(errs, validateNonSpecialIP(a.IP, fld.Child("ip"))...)
	}
	return errs
}

func validateEndpointPort(p *corev1.EndpointPort, requireName bool, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if requireName && p.Name == "" {
		errs = append(errs, field.Required(fld.Child("name"), ""))
	} else if p.Name != "" {
		errs = append(errs, validateDNS1123Label(p.Name, fld.Child("name"))...)
	}
	for _, msg := range validation.IsValidPortNum(int(p.Port)) {
		errs = append(errs, field.Invalid(fld.Child("port"), p.Port, msg))
	}
	errs = append(errs, validateProtocol(p.Protocol, fld.Child("protocol"))...)
	if p.AppProtocol != nil {
		errs = append(errs, validateQualifiedName(*p.AppProtocol, fld.Child("appProtocol"))...)
	}
	return errs
}

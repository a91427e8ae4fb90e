package datapath

import (
	"net/netip"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// ServiceNameLabel links an EndpointSlice to its Service; the data plane
// reads every slice that carries it, controller-managed or hand-written.
const ServiceNameLabel = discoveryv1.LabelServiceName

// FromAPI builds the desired State of node from Services and their
// EndpointSlices. Headless and ExternalName services are skipped (DNS
// serves them); endpoints are matched to service ports by port name, as
// Kubernetes does. The output is sorted, so equal input gives equal State.
func FromAPI(node string, nodeIPs []netip.Addr, svcs []*corev1.Service, slices []*discoveryv1.EndpointSlice) *State {
	bySvc := map[string][]*discoveryv1.EndpointSlice{}
	for _, sl := range slices {
		name := sl.Labels[ServiceNameLabel]
		if name == "" || sl.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		bySvc[sl.Namespace+"/"+name] = append(bySvc[sl.Namespace+"/"+name], sl)
	}
	st := &State{NodeName: node, NodeIPs: nodeIPs}
	for _, svc := range svcs {
		ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
		if err != nil || svc.Spec.Type == corev1.ServiceTypeExternalName || !ip.Is4() {
			continue
		}
		s := Service{
			Namespace: svc.Namespace, Name: svc.Name, Type: svc.Spec.Type, ClusterIP: ip,
			ExternalIPs:          parseAddrs(svc.Spec.ExternalIPs),
			ExternalTrafficLocal: svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
			InternalTrafficLocal: svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal,
		}
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(ing.IP); err == nil {
				s.LoadBalancerIPs = append(s.LoadBalancerIPs, a)
			}
		}
		if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
			timeout := int32(corev1.DefaultClientIPServiceAffinitySeconds)
			if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
				timeout = *c.ClientIP.TimeoutSeconds
			}
			s.AffinityTimeout = time.Duration(timeout) * time.Second
		}
		for _, sp := range svc.Spec.Ports {
			p := Port{Name: sp.Name, Protocol: sp.Protocol, Port: uint16(sp.Port), NodePort: uint16(sp.NodePort)}
			if p.Protocol == "" {
				p.Protocol = corev1.ProtocolTCP
			}
			for _, sl := range bySvc[svc.Namespace+"/"+svc.Name] {
				target, ok := slicePort(sl, sp.Name, p.Protocol)
				if !ok {
					continue
				}
				for _, ep := range sl.Endpoints {
					b := Backend{Port: target, Ready: isTrue(ep.Conditions.Ready, true),
						Serving: isTrue(ep.Conditions.Serving, isTrue(ep.Conditions.Ready, true)), Terminating: isTrue(ep.Conditions.Terminating, false)}
					if ep.NodeName != nil {
						b.NodeName = *ep.NodeName
					}
					for _, a := range ep.Addresses {
						if addr, err := netip.ParseAddr(a); err == nil {
							b.Addr = addr
							p.Backends = append(p.Backends, b)
						}
					}
				}
			}
			sort.Slice(p.Backends, func(i, j int) bool {
				if c := p.Backends[i].Addr.Compare(p.Backends[j].Addr); c != 0 {
					return c < 0
				}
				return p.Backends[i].Port < p.Backends[j].Port
			})
			s.Ports = append(s.Ports, p)
		}
		st.Services = append(st.Services, s)
	}
	sort.Slice(st.Services, func(i, j int) bool { return st.Services[i].Key() < st.Services[j].Key() })
	return st
}

// slicePort finds the slice's port for a service port name and protocol.
func slicePort(sl *discoveryv1.EndpointSlice, name string, proto corev1.Protocol) (uint16, bool) {
	for _, p := range sl.Ports {
		pn, pp := "", corev1.ProtocolTCP
		if p.Name != nil {
			pn = *p.Name
		}
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if pn == name && pp == proto && p.Port != nil {
			return uint16(*p.Port), true
		}
	}
	return 0, false
}

func isTrue(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

func parseAddrs(ss []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			out = append(out, a)
		}
	}
	return out
}

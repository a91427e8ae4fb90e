package endpointslice

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	// ControllerName is the endpointslice.kubernetes.io/managed-by value
	// of the slices this controller owns.
	ControllerName = "endpointslice-controller.weir.dev"
	// MaxEndpointsPerSlice is how many endpoints one slice holds at most,
	// Kubernetes' default: small enough that one endpoint change does not
	// resend thousands of endpoints to every node.
	MaxEndpointsPerSlice = 100
)

// plan is what reconcile decides for one Service. Every slice in it is a
// fresh object the caller may send as is: creates carry generateName,
// updates the name and resourceVersion of the slice they rewrite.
type plan struct {
	create, update, delete []*discoveryv1.EndpointSlice
}

func (p plan) writes() int { return len(p.create) + len(p.update) + len(p.delete) }

// managesSlices says whether the controller writes slices for svc: only
// for a Service with a selector that is not of type ExternalName. Users
// manage the slices of the others by hand. (An empty selector is no
// selector: the server's JSON drops it.)
func managesSlices(svc *corev1.Service) bool {
	return len(svc.Spec.Selector) > 0 && svc.Spec.Type != corev1.ServiceTypeExternalName
}

// selects reports whether svc's selector matches a pod's labels.
func selects(svc *corev1.Service, podLabels map[string]string) bool {
	if !managesSlices(svc) {
		return false
	}
	for k, v := range svc.Spec.Selector {
		if got, ok := podLabels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// podIPv4 is the pod's IPv4 address, or "" when it has none (yet).
func podIPv4(pod *corev1.Pod) string {
	for _, ip := range pod.Status.PodIPs {
		if isIPv4(ip.IP) {
			return ip.IP
		}
	}
	if isIPv4(pod.Status.PodIP) {
		return pod.Status.PodIP
	}
	return ""
}

// isIPv4 says whether s is an IPv4 address in dotted-decimal form (the
// form ParseAddr accepts, so s needs no rewriting).
func isIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}

// endpointIP is the address of a pod that is an endpoint at all: it has
// an IPv4 address and has not finished. Terminating pods stay (as
// terminating endpoints) until they are gone. "" for other pods.
func endpointIP(pod *corev1.Pod) string {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return ""
	}
	return podIPv4(pod)
}

// podReady is the pod's Ready condition.
func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// setsHostname says whether the pod's hostname is published for svc: the
// pod names svc as its subdomain, so DNS gives it a per-pod name.
func setsHostname(pod *corev1.Pod, svc *corev1.Service) bool {
	return pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && pod.Namespace == svc.Namespace
}

func podKey(namespace, name string) string { return namespace + "/" + name }

// endpointKey names the pod an endpoint stands for; "" for an endpoint
// that stands for no pod (none of ours does).
func endpointKey(ep *discoveryv1.Endpoint) string {
	if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
		return ""
	}
	return podKey(ep.TargetRef.Namespace, ep.TargetRef.Name)
}

// podEndpoint is the pod (which has address ip) as an endpoint of svc.
// node is the pod's node, or nil when it is not known (the endpoint then
// has no zone).
func podEndpoint(svc *corev1.Service, pod *corev1.Pod, ip string, node *corev1.Node) discoveryv1.Endpoint {
	serving := podReady(pod)
	terminating := pod.DeletionTimestamp != nil
	// A terminating pod is never ready, so clients stop opening new
	// connections to it; it may still serve the ones it has.
	ready := svc.Spec.PublishNotReadyAddresses || (serving && !terminating)
	ep := discoveryv1.Endpoint{
		Addresses:  []string{ip},
		Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
	}
	if pod.Spec.NodeName != "" {
		ep.NodeName = new(pod.Spec.NodeName)
	}
	if node != nil && node.Labels[corev1.LabelTopologyZone] != "" {
		ep.Zone = new(node.Labels[corev1.LabelTopologyZone])
	}
	if setsHostname(pod, svc) {
		ep.Hostname = new(pod.Spec.Hostname)
	}
	return ep
}

// findPort resolves a Service port's target on a pod: a number as is, a
// name through the pod's container ports (sidecar init containers
// included) of the same protocol. ok is false when the pod has no port of
// that name.
func findPort(pod *corev1.Pod, sp *corev1.ServicePort) (port int32, ok bool) {
	proto := cmp.Or(sp.Protocol, corev1.ProtocolTCP)
	switch {
	case sp.TargetPort.Type == intstr.Int && sp.TargetPort.IntVal != 0:
		return sp.TargetPort.IntVal, true
	case sp.TargetPort.Type == intstr.Int || sp.TargetPort.StrVal == "":
		// Unset: the server defaults targetPort to port.
		return sp.Port, true
	}
	name := sp.TargetPort.StrVal
	match := func(cs []corev1.Container, sidecarsOnly bool) (int32, bool) {
		for _, c := range cs {
			if sidecarsOnly && (c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
				continue
			}
			for _, p := range c.Ports {
				if p.Name == name && cmp.Or(p.Protocol, corev1.ProtocolTCP) == proto {
					return p.ContainerPort, true
				}
			}
		}
		return 0, false
	}
	if p, ok := match(pod.Spec.Containers, false); ok {
		return p, true
	}
	return match(pod.Spec.InitContainers, true)
}

// podPorts are the ports svc reaches on pod, in the Service's order; a
// port whose target the pod does not have is left out.
func podPorts(svc *corev1.Service, pod *corev1.Pod) []discoveryv1.EndpointPort {
	out := make([]discoveryv1.EndpointPort, 0, len(svc.Spec.Ports))
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		n, ok := findPort(pod, sp)
		if !ok {
			continue
		}
		out = append(out, discoveryv1.EndpointPort{
			Name: new(sp.Name), Port: new(n), Protocol: new(cmp.Or(sp.Protocol, corev1.ProtocolTCP)), AppProtocol: sp.AppProtocol,
		})
	}
	return out
}

// portKey identifies a set of ports whatever their order; slices are
// grouped by it (every endpoint of a slice serves the slice's ports).
func portKey(ports []discoveryv1.EndpointPort) string {
	parts := make([]string, 0, len(ports))
	for _, p := range ports {
		var b strings.Builder
		b.WriteString(deref(p.Name))
		b.WriteByte('/')
		b.WriteString(string(cmp.Or(deref(p.Protocol), corev1.ProtocolTCP)))
		b.WriteByte('/')
		if p.Port != nil {
			b.WriteString(strconv.Itoa(int(*p.Port)))
		}
		b.WriteByte('/')
		b.WriteString(deref(p.AppProtocol))
		parts = append(parts, b.String())
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// sliceLabels are the labels of svc's slices: the Service's own, the
// service name, the owner, and the headless mark for ClusterIP None, as
// Kubernetes sets them.
func sliceLabels(svc *corev1.Service) map[string]string {
	l := make(map[string]string, len(svc.Labels)+3)
	for k, v := range svc.Labels {
		switch k {
		case discoveryv1.LabelServiceName, discoveryv1.LabelManagedBy, corev1.IsHeadlessService:
		default:
			l[k] = v
		}
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		l[corev1.IsHeadlessService] = ""
	}
	l[discoveryv1.LabelServiceName] = svc.Name
	l[discoveryv1.LabelManagedBy] = ControllerName
	return l
}

// ownerRef makes svc the controlling owner, so slices go with their
// Service (the garbage collector deletes them) even when this controller
// does not run.
func ownerRef(svc *corev1.Service) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
		Controller: new(true), BlockOwnerDeletion: new(true),
	}
}

// ownedBy says whether svc (this incarnation of it: same UID) owns obj.
func ownedBy(refs []metav1.OwnerReference, svc *corev1.Service) bool {
	for _, r := range refs {
		if r.Kind == "Service" && r.APIVersion == "v1" && r.UID == svc.UID && r.Name == svc.Name {
			return true
		}
	}
	return false
}

// sliceMeta is what every slice of one Service carries.
type sliceMeta struct {
	labels map[string]string
	owner  metav1.OwnerReference
}

func (m sliceMeta) matches(s *discoveryv1.EndpointSlice) bool {
	return maps.Equal(s.Labels, m.labels) && len(s.OwnerReferences) == 1 &&
		apiequality.Semantic.DeepEqual(s.OwnerReferences[0], m.owner)
}

// apply sets the Service's labels and owner on s, replacing whatever
// labels s had: the controller owns its slices' labels outright.
func (m sliceMeta) apply(s *discoveryv1.EndpointSlice) {
	s.Labels = maps.Clone(m.labels)
	s.OwnerReferences = []metav1.OwnerReference{m.owner}
}

func (m sliceMeta) newSlice(svc *corev1.Service, ports []discoveryv1.EndpointPort) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{GenerateName: svc.Name + "-", Namespace: svc.Namespace},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       slices.Clone(ports),
		Endpoints:   []discoveryv1.Endpoint{},
	}
	m.apply(s)
	return s
}

// isPlaceholder says whether s is the empty slice a Service without
// endpoints keeps.
func (m sliceMeta) isPlaceholder(s *discoveryv1.EndpointSlice) bool {
	return len(s.Endpoints) == 0 && len(s.Ports) == 0 && s.AddressType == discoveryv1.AddressTypeIPv4 && m.matches(s)
}

// portGroup is the desired endpoints that serve one set of ports.
type portGroup struct {
	ports     []discoveryv1.EndpointPort
	endpoints map[string]discoveryv1.Endpoint // by pod key
}

// desiredGroups computes every pod's endpoint and groups them by the
// ports they serve. nodes needs to hold only the pods' nodes.
func desiredGroups(svc *corev1.Service, pods []*corev1.Pod, nodes map[string]*corev1.Node) map[string]*portGroup {
	groups := map[string]*portGroup{}
	// Without named target ports every pod serves the same ports: worked
	// out once, not per pod, as a Service of thousands of pods is
	// reconciled on every change of one.
	var fixed *portGroup
	if !namedTargetPorts(svc) {
		fixed = &portGroup{ports: podPorts(svc, &corev1.Pod{}), endpoints: make(map[string]discoveryv1.Endpoint, len(pods))}
		groups[portKey(fixed.ports)] = fixed
	}
	for _, pod := range pods {
		ip := endpointIP(pod)
		if pod.Namespace != svc.Namespace || ip == "" {
			continue
		}
		if fixed != nil {
			fixed.endpoints[podKey(pod.Namespace, pod.Name)] = podEndpoint(svc, pod, ip, nodes[pod.Spec.NodeName])
			continue
		}
		ports := podPorts(svc, pod)
		k := portKey(ports)
		g := groups[k]
		if g == nil {
			g = &portGroup{ports: ports, endpoints: map[string]discoveryv1.Endpoint{}}
			groups[k] = g
		}
		g.endpoints[podKey(pod.Namespace, pod.Name)] = podEndpoint(svc, pod, ip, nodes[pod.Spec.NodeName])
	}
	if fixed != nil && len(fixed.endpoints) == 0 {
		delete(groups, portKey(fixed.ports))
	}
	return groups
}

func namedTargetPorts(svc *corev1.Service) bool {
	for _, p := range svc.Spec.Ports {
		if p.TargetPort.Type == intstr.String && p.TargetPort.StrVal != "" {
			return true
		}
	}
	return false
}

// endpointEqual is apiequality.Semantic.DeepEqual for endpoints, without
// reflection: it runs for every endpoint of a Service on every change.
// (A test checks it knows every field of the type.)
func endpointEqual(a, b *discoveryv1.Endpoint) bool {
	return slices.Equal(a.Addresses, b.Addresses) &&
		ptrEqual(a.Conditions.Ready, b.Conditions.Ready) &&
		ptrEqual(a.Conditions.Serving, b.Conditions.Serving) &&
		ptrEqual(a.Conditions.Terminating, b.Conditions.Terminating) &&
		ptrEqual(a.Hostname, b.Hostname) &&
		ptrEqual(a.NodeName, b.NodeName) &&
		ptrEqual(a.Zone, b.Zone) &&
		maps.Equal(a.DeprecatedTopology, b.DeprecatedTopology) &&
		(a.TargetRef == nil) == (b.TargetRef == nil) && (a.TargetRef == nil || *a.TargetRef == *b.TargetRef) &&
		((a.Hints == nil && b.Hints == nil) || apiequality.Semantic.DeepEqual(a.Hints, b.Hints))
}

func ptrEqual[T comparable](a, b *T) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// reconcile decides which of svc's slices to create, update and delete
// so that they hold exactly the endpoints of pods (the pods svc selects),
// rewriting as few slices as it can. nodes needs to hold only the pods'
// nodes; a pod whose node is missing has no zone. existing are the slices
// labelled with svc's name; those another manager owns are never in the
// plan. maxPerSlice bounds the endpoints of a slice.
//
// Existing slices keep their endpoints in place, changed ones rewritten;
// new endpoints first fill slices being rewritten anyway (fullest
// first), then go into one unchanged slice that has room for all of them,
// then into new slices; a slice that would be deleted is reused for one
// that would be created. Slices of another incarnation of the Service
// (another UID) are deleted, never reused.
func reconcile(svc *corev1.Service, pods []*corev1.Pod, nodes map[string]*corev1.Node, existing []*discoveryv1.EndpointSlice, maxPerSlice int) plan {
	maxPerSlice = max(maxPerSlice, 1)
	meta := sliceMeta{labels: sliceLabels(svc), owner: ownerRef(svc)}
	groups := desiredGroups(svc, pods, nodes)

	var p plan
	var reusable []*discoveryv1.EndpointSlice // deletes that may become updates
	managed := 0
	byKey := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range sortedByName(existing) {
		if s.Labels[discoveryv1.LabelManagedBy] != ControllerName || s.Namespace != svc.Namespace {
			continue
		}
		managed++
		if !ownedBy(s.OwnerReferences, svc) || s.AddressType != discoveryv1.AddressTypeIPv4 {
			p.delete = append(p.delete, s)
			continue
		}
		k := portKey(s.Ports)
		byKey[k] = append(byKey[k], s)
	}
	keys := slices.Sorted(maps.Keys(groups))
	for k := range byKey {
		if groups[k] == nil {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		g := groups[k]
		if g == nil {
			g = &portGroup{}
		}
		create, update, del := reconcilePorts(svc, meta, g, byKey[k], maxPerSlice)
		p.create = append(p.create, create...)
		p.update = append(p.update, update...)
		p.delete = append(p.delete, del...)
		reusable = append(reusable, del...)
	}

	if len(p.create) == 0 && len(p.delete) == managed {
		// Nothing left: keep one empty slice, so that readers can tell a
		// Service with no endpoints from one not processed yet.
		if len(p.delete) == 1 && meta.isPlaceholder(p.delete[0]) {
			p.delete = nil
			reusable = nil
		} else {
			p.create = append(p.create, meta.newSlice(svc, nil))
		}
	}

	// A rename costs a create and a delete on every watcher; an update
	// in place costs one event.
	for len(p.create) > 0 && len(reusable) > 0 {
		old := reusable[len(reusable)-1]
		reusable = reusable[:len(reusable)-1]
		c := p.create[len(p.create)-1]
		p.create = p.create[:len(p.create)-1]
		p.delete = slices.DeleteFunc(p.delete, func(s *discoveryv1.EndpointSlice) bool { return s == old })
		u := old.DeepCopy()
		meta.apply(u)
		u.Ports, u.Endpoints = c.Ports, c.Endpoints
		p.update = append(p.update, u)
	}
	return p
}

// reconcilePorts does reconcile's work for the slices of one port set.
// It takes g's endpoints as it places them.
func reconcilePorts(svc *corev1.Service, meta sliceMeta, g *portGroup, existing []*discoveryv1.EndpointSlice, maxPerSlice int) (create, update, del []*discoveryv1.EndpointSlice) {
	desired := g.endpoints
	if desired == nil {
		desired = map[string]discoveryv1.Endpoint{}
	}
	var unchanged []*discoveryv1.EndpointSlice
	for _, s := range existing {
		eps := make([]discoveryv1.Endpoint, 0, len(s.Endpoints))
		changed := false
		for i := range s.Endpoints {
			k := endpointKey(&s.Endpoints[i])
			want, ok := desired[k]
			if !ok {
				// Gone, or a duplicate of one already placed.
				changed = true
				continue
			}
			if !endpointEqual(&s.Endpoints[i], &want) {
				changed = true
			}
			eps = append(eps, want)
			delete(desired, k)
		}
		switch {
		case len(eps) == 0:
			del = append(del, s)
		case changed || !meta.matches(s) || len(s.Endpoints) > maxPerSlice:
			u := s.DeepCopy()
			meta.apply(u)
			u.Endpoints = eps
			if len(eps) > maxPerSlice {
				// Overfull (written with a larger bound): the excess
				// goes back to be placed elsewhere.
				for _, ep := range eps[maxPerSlice:] {
					desired[endpointKey(&ep)] = ep
				}
				u.Endpoints = eps[:maxPerSlice]
			}
			update = append(update, u)
		default:
			unchanged = append(unchanged, s)
		}
	}

	rest := make([]discoveryv1.Endpoint, 0, len(desired))
	for _, k := range slices.Sorted(maps.Keys(desired)) {
		rest = append(rest, desired[k])
	}
	take := func(s *discoveryv1.EndpointSlice) {
		n := min(maxPerSlice-len(s.Endpoints), len(rest))
		s.Endpoints = append(s.Endpoints, rest[:n]...)
		rest = rest[n:]
	}
	// Slices being rewritten take new endpoints for free; the fullest
	// first, so slices stay few.
	slices.SortStableFunc(update, func(a, b *discoveryv1.EndpointSlice) int { return len(b.Endpoints) - len(a.Endpoints) })
	for _, u := range update {
		take(u)
	}
	for len(rest) > 0 {
		var fill *discoveryv1.EndpointSlice
		if len(rest) < maxPerSlice {
			// One unchanged slice with room for all that is left beats a
			// new slice; the fullest such one keeps slices packed.
			for _, s := range unchanged {
				if maxPerSlice-len(s.Endpoints) >= len(rest) && (fill == nil || len(s.Endpoints) > len(fill.Endpoints)) {
					fill = s
				}
			}
		}
		if fill != nil {
			unchanged = slices.DeleteFunc(unchanged, func(s *discoveryv1.EndpointSlice) bool { return s == fill })
			u := fill.DeepCopy()
			take(u)
			update = append(update, u)
			continue
		}
		c := meta.newSlice(svc, g.ports)
		take(c)
		create = append(create, c)
	}
	return create, update, del
}

func sortedByName(in []*discoveryv1.EndpointSlice) []*discoveryv1.EndpointSlice {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	return out
}

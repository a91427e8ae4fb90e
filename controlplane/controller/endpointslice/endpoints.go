package endpointslice

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxEndpointsAddresses is where Kubernetes truncates an Endpoints
// object (marking it over capacity); readers that need more read slices.
const maxEndpointsAddresses = 1000

// endpointsLabels are the labels of svc's Endpoints object: the
// Service's own, the headless mark, skip-mirror (so no mirroring
// controller copies it back into slices, as in Kubernetes) and the
// managed-by mark that tells this controller's objects from hand-written
// ones.
func endpointsLabels(svc *corev1.Service) map[string]string {
	l := make(map[string]string, len(svc.Labels)+3)
	for k, v := range svc.Labels {
		if k != corev1.IsHeadlessService && k != discoveryv1.LabelManagedBy {
			l[k] = v
		}
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		l[corev1.IsHeadlessService] = ""
	}
	l[discoveryv1.LabelSkipMirror] = "true"
	l[discoveryv1.LabelManagedBy] = ControllerName
	return l
}

// desiredEndpoints is svc's legacy Endpoints object for pods (the pods
// svc selects), as Kubernetes' endpoints controller writes it: ready pods
// in addresses, others in notReadyAddresses, terminating pods left out
// (unless publishNotReadyAddresses), one subset per set of ports, at most
// 1,000 addresses.
func desiredEndpoints(svc *corev1.Service, pods []*corev1.Pod) *corev1.Endpoints {
	type subset struct {
		ports           []corev1.EndpointPort
		ready, notReady []corev1.EndpointAddress
	}
	subsets := map[string]*subset{}
	headless := svc.Spec.ClusterIP == corev1.ClusterIPNone
	for _, pod := range pods {
		ip := endpointIP(pod)
		if pod.Namespace != svc.Namespace || ip == "" {
			continue
		}
		if pod.DeletionTimestamp != nil && !svc.Spec.PublishNotReadyAddresses {
			continue
		}
		ports := podPorts(svc, pod)
		if len(ports) == 0 && (len(svc.Spec.Ports) > 0 || !headless) {
			// No port of the Service reaches this pod.
			continue
		}
		k := portKey(ports)
		ss := subsets[k]
		if ss == nil {
			ss = &subset{}
			for _, p := range ports {
				ss.ports = append(ss.ports, corev1.EndpointPort{Name: *p.Name, Port: *p.Port, Protocol: *p.Protocol, AppProtocol: p.AppProtocol})
			}
			subsets[k] = ss
		}
		addr := corev1.EndpointAddress{
			IP:        ip,
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		}
		if pod.Spec.NodeName != "" {
			addr.NodeName = new(pod.Spec.NodeName)
		}
		if setsHostname(pod, svc) {
			addr.Hostname = pod.Spec.Hostname
		}
		if svc.Spec.PublishNotReadyAddresses || podReady(pod) {
			ss.ready = append(ss.ready, addr)
		} else {
			ss.notReady = append(ss.notReady, addr)
		}
	}

	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{
			Name: svc.Name, Namespace: svc.Namespace,
			Labels: endpointsLabels(svc), OwnerReferences: []metav1.OwnerReference{ownerRef(svc)},
		},
	}
	byAddr := func(a, b corev1.EndpointAddress) int {
		return cmp.Or(strings.Compare(a.IP, b.IP), strings.Compare(string(a.TargetRef.UID), string(b.TargetRef.UID)))
	}
	for _, k := range slices.Sorted(maps.Keys(subsets)) {
		ss := subsets[k]
		slices.SortFunc(ss.ready, byAddr)
		slices.SortFunc(ss.notReady, byAddr)
		ep.Subsets = append(ep.Subsets, corev1.EndpointSubset{Addresses: ss.ready, NotReadyAddresses: ss.notReady, Ports: ss.ports})
	}
	if truncate(ep.Subsets, maxEndpointsAddresses) {
		ep.Annotations = map[string]string{corev1.EndpointsOverCapacity: "truncated"}
	}
	ep.Subsets = slices.DeleteFunc(ep.Subsets, func(s corev1.EndpointSubset) bool {
		return len(s.Addresses) == 0 && len(s.NotReadyAddresses) == 0
	})
	return ep
}

// truncate cuts subsets down to limit addresses, not-ready ones first,
// each subset keeping its share, as Kubernetes does; it reports whether
// it cut anything.
func truncate(subsets []corev1.EndpointSubset, limit int) bool {
	ready, notReady := 0, 0
	for _, s := range subsets {
		ready += len(s.Addresses)
		notReady += len(s.NotReadyAddresses)
	}
	if ready+notReady <= limit {
		return false
	}
	cutReady := ready > limit
	room, total := limit-ready, notReady
	if cutReady {
		room, total = limit, ready
	}
	left := room
	for i := range subsets {
		s := &subsets[i]
		n := len(s.NotReadyAddresses)
		if cutReady {
			n = len(s.Addresses)
		}
		keep := min(int(math.Ceil(float64(n)/float64(total)*float64(room))), left)
		if cutReady {
			s.Addresses = s.Addresses[:keep]
			s.NotReadyAddresses = nil
		} else {
			s.NotReadyAddresses = s.NotReadyAddresses[:keep]
		}
		left -= keep
	}
	return true
}

// endpointsDiffer says whether have must be rewritten to say what want
// says (its trigger-time annotation aside).
func endpointsDiffer(have, want *corev1.Endpoints) bool {
	return !maps.Equal(have.Labels, want.Labels) ||
		!apiequality.Semantic.DeepEqual(have.OwnerReferences, want.OwnerReferences) ||
		have.Annotations[corev1.EndpointsOverCapacity] != want.Annotations[corev1.EndpointsOverCapacity] ||
		!apiequality.Semantic.DeepEqual(have.Subsets, want.Subsets)
}

package defaults

import (
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Default sets the defaults Kubernetes sets on obj, in place. obj must be a
// pointer to one of the kinds listed in the package documentation; any other
// value is left untouched, so the API server can call Default on everything
// it decodes.
//
// Default is idempotent and works on create and update bodies alike, the way
// kube-apiserver defaults every decoded object. Two rules need fields the
// server assigns: a Job whose manualSelector is not true gets its generated
// selector and template labels only once it carries a UID, so give the object
// its UID before calling Default on create.
func Default(obj runtime.Object) {
	switch o := obj.(type) {
	case *corev1.Pod:
		defaultPod(o)
	case *corev1.Service:
		defaultService(o)
	case *corev1.Namespace:
		defaultNamespace(o)
	case *corev1.Node:
		defaultNode(o)
	case *corev1.Endpoints:
		defaultEndpoints(o)
	case *corev1.ConfigMap:
		// Nothing a user can see: kube-apiserver only turns a nil data map
		// into an empty one, which serialises the same.
	case *corev1.Secret:
		defaultSecret(o)
	case *corev1.Event:
		// core/v1 Events have no defaults.
	case *discoveryv1.EndpointSlice:
		defaultEndpointSlice(o)
	case *coordinationv1.Lease:
		// Leases have no defaults.
	case *appsv1.Deployment:
		defaultDeployment(o)
	case *appsv1.ReplicaSet:
		defaultReplicaSet(o)
	case *appsv1.DaemonSet:
		defaultDaemonSet(o)
	case *appsv1.StatefulSet:
		defaultStatefulSet(o)
	case *appsv1.ControllerRevision:
		// ControllerRevisions have no defaults.
	case *batchv1.Job:
		defaultJob(o)
	case *batchv1.CronJob:
		defaultCronJob(o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		defaultHPA(o)
	case *certificatesv1.CertificateSigningRequest:
		// certificates/v1 has no defaults; the v1beta1 ones (usages,
		// signerName) were dropped when the API went GA.
	}
}

func defaultNamespace(ns *corev1.Namespace) {
	// kube-apiserver labels every named namespace with its own name so that
	// namespace selectors can pick namespaces by name.
	if ns.Name != "" {
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
	}
	// The namespace strategy gives every new namespace the "kubernetes"
	// finalizer, which the namespace controller removes once the content is
	// gone. Never put it back on a namespace being deleted: the controller's
	// finalize call would then undo itself and the namespace would never go.
	if len(ns.Spec.Finalizers) == 0 && ns.DeletionTimestamp == nil {
		ns.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
	}
	if ns.Status.Phase == "" {
		if ns.DeletionTimestamp != nil {
			ns.Status.Phase = corev1.NamespaceTerminating
		} else {
			ns.Status.Phase = corev1.NamespaceActive
		}
	}
}

func defaultNode(node *corev1.Node) {
	// podCIDR is the old single-value spelling of podCIDRs; kube-apiserver's
	// conversion keeps the two in step.
	if len(node.Spec.PodCIDRs) == 0 && node.Spec.PodCIDR != "" {
		node.Spec.PodCIDRs = []string{node.Spec.PodCIDR}
	}
	if node.Spec.PodCIDR == "" && len(node.Spec.PodCIDRs) > 0 {
		node.Spec.PodCIDR = node.Spec.PodCIDRs[0]
	}
	if node.Status.Allocatable == nil && node.Status.Capacity != nil {
		node.Status.Allocatable = node.Status.Capacity.DeepCopy()
	}
}

func defaultEndpoints(ep *corev1.Endpoints) {
	for i := range ep.Subsets {
		for j := range ep.Subsets[i].Ports {
			if ep.Subsets[i].Ports[j].Protocol == "" {
				ep.Subsets[i].Ports[j].Protocol = corev1.ProtocolTCP
			}
		}
	}
}

func defaultSecret(s *corev1.Secret) {
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	// stringData is write-only: kube-apiserver folds it into data (it wins
	// over data) and never stores or returns it.
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = make(map[string][]byte, len(s.StringData))
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
	}
	s.StringData = nil
}

func defaultEndpointSlice(es *discoveryv1.EndpointSlice) {
	for i := range es.Ports {
		p := &es.Ports[i]
		if p.Name == nil {
			p.Name = new("")
		}
		if p.Protocol == nil {
			p.Protocol = new(corev1.ProtocolTCP)
		}
	}
}

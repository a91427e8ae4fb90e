package apiserver

import (
	"reflect"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
)

// Kubernetes' per-kind strategies, reduced to what weir's kinds need: which
// part of an object a write to the main resource or to /status may change,
// and which fields a field selector may name.

// structField returns the named top-level struct field of obj ("Spec", "Status"),
// or an invalid Value when the kind has none.
func structField(obj runtime.Object, name string) reflect.Value {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer {
		return reflect.Value{}
	}
	return v.Elem().FieldByName(name)
}

// prepareCreate clears what a client may not set when it creates an object.
func prepareCreate(obj runtime.Object) {
	switch o := obj.(type) {
	case *corev1.Pod:
		o.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: qosClass(&o.Spec)}
	case *corev1.Namespace:
		o.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
	case *corev1.Node, *corev1.Event, *certificatesv1.CertificateSigningRequest:
		// A node reports its status when it registers; CSR status is the signer's.
		if c, ok := obj.(*certificatesv1.CertificateSigningRequest); ok {
			c.Status = certificatesv1.CertificateSigningRequestStatus{}
		}
	default:
		if st := structField(obj, "Status"); st.IsValid() && st.CanSet() {
			st.Set(reflect.Zero(st.Type()))
		}
	}
	if structField(obj, "Spec").IsValid() {
		if m, err := meta.Accessor(obj); err == nil {
			m.SetGeneration(1)
		}
	}
}

// prepareUpdate keeps the old status on a write to the main resource and
// bumps generation when the spec changed.
func prepareUpdate(obj, old runtime.Object) {
	ns, os := structField(obj, "Status"), structField(old, "Status")
	if ns.IsValid() && ns.CanSet() {
		switch obj.(type) {
		case *corev1.Node, *corev1.Event:
			// The kubelet writes whole Node objects; Events have no split.
		default:
			ns.Set(os)
		}
	}
	bumpGeneration(obj, old)
}

// prepareStatusUpdate keeps the old spec and metadata that /status may not
// change; only status moves.
func prepareStatusUpdate(obj, old runtime.Object) {
	if sp := structField(obj, "Spec"); sp.IsValid() && sp.CanSet() {
		sp.Set(structField(old, "Spec"))
	}
	m, _ := meta.Accessor(obj)
	om, _ := meta.Accessor(old)
	if m != nil && om != nil {
		m.SetGeneration(om.GetGeneration())
		m.SetDeletionTimestamp(om.GetDeletionTimestamp())
		m.SetFinalizers(om.GetFinalizers())
		m.SetOwnerReferences(om.GetOwnerReferences())
	}
}

func bumpGeneration(obj, old runtime.Object) {
	sp, osp := structField(obj, "Spec"), structField(old, "Spec")
	m, _ := meta.Accessor(obj)
	om, _ := meta.Accessor(old)
	if m == nil || om == nil {
		return
	}
	m.SetGeneration(om.GetGeneration())
	if sp.IsValid() && !apiequality.Semantic.DeepEqual(sp.Interface(), osp.Interface()) {
		m.SetGeneration(om.GetGeneration() + 1)
	}
}

// qosClass follows Kubernetes' rules: Guaranteed when every container sets
// equal cpu and memory requests and limits, BestEffort when none sets any.
func qosClass(spec *corev1.PodSpec) corev1.PodQOSClass {
	any, guaranteed := false, true
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		if len(c.Resources.Requests) > 0 || len(c.Resources.Limits) > 0 {
			any = true
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			l, okl := c.Resources.Limits[r]
			q, okq := c.Resources.Requests[r]
			if !okl || (okq && q.Cmp(l) != 0) {
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

// fieldSet is what field selectors may match on for obj.
func fieldSet(obj runtime.Object) fields.Set {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	f := fields.Set{"metadata.name": m.GetName(), "metadata.namespace": m.GetNamespace()}
	switch o := obj.(type) {
	case *corev1.Pod:
		f["spec.nodeName"] = o.Spec.NodeName
		f["spec.restartPolicy"] = string(o.Spec.RestartPolicy)
		f["spec.schedulerName"] = o.Spec.SchedulerName
		f["spec.serviceAccountName"] = o.Spec.ServiceAccountName
		f["spec.hostNetwork"] = boolString(o.Spec.HostNetwork)
		f["status.phase"] = string(o.Status.Phase)
		f["status.podIP"] = o.Status.PodIP
		f["status.nominatedNodeName"] = o.Status.NominatedNodeName
	case *corev1.Event:
		f["involvedObject.kind"] = o.InvolvedObject.Kind
		f["involvedObject.namespace"] = o.InvolvedObject.Namespace
		f["involvedObject.name"] = o.InvolvedObject.Name
		f["involvedObject.uid"] = string(o.InvolvedObject.UID)
		f["involvedObject.apiVersion"] = o.InvolvedObject.APIVersion
		f["involvedObject.resourceVersion"] = o.InvolvedObject.ResourceVersion
		f["involvedObject.fieldPath"] = o.InvolvedObject.FieldPath
		f["reason"] = o.Reason
		f["reportingComponent"] = o.ReportingController
		f["source"] = o.Source.Component
		f["type"] = o.Type
	case *corev1.Secret:
		f["type"] = string(o.Type)
	case *corev1.Node:
		f["spec.unschedulable"] = boolString(o.Spec.Unschedulable)
	case *corev1.Namespace:
		f["status.phase"] = string(o.Status.Phase)
	case *certificatesv1.CertificateSigningRequest:
		f["spec.signerName"] = o.Spec.SignerName
	}
	return f
}

// fieldLabels lists the field-selector keys a kind supports, so an
// unsupported one is refused instead of matching nothing.
func fieldLabels(obj runtime.Object) map[string]bool {
	out := map[string]bool{}
	for k := range fieldSet(obj) {
		out[k] = true
	}
	return out
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

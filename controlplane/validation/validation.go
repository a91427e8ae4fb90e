package validation

import (
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Messages Kubernetes uses in more than one place.
const (
	isNegativeErrorMsg    = apivalidation.IsNegativeErrorMsg
	fieldImmutableMsg     = apivalidation.FieldImmutableErrorMsg
	isNotPositiveErrorMsg = "must be greater than zero"
)

// Validate checks obj, a pointer to one of the kinds weir serves, and returns
// every problem it finds. old is nil on create; on update it is the stored
// object, of the same type, and Validate also enforces what may not change.
// An empty list means the object may be stored.
//
// Kinds: core/v1 Namespace, Node, Pod, Service, Endpoints, ConfigMap, Secret,
// Event; discovery/v1 EndpointSlice; coordination/v1 Lease; apps/v1
// Deployment, ReplicaSet, DaemonSet, StatefulSet, ControllerRevision;
// batch/v1 Job, CronJob; autoscaling/v2 HorizontalPodAutoscaler;
// certificates/v1 CertificateSigningRequest. Any other type has no rules and
// yields nil. Validate does not modify obj or old and is safe for concurrent
// use.
func Validate(obj, old runtime.Object) field.ErrorList {
	switch o := obj.(type) {
	case *corev1.Pod:
		return withOld(o, old, validatePod)
	case *corev1.Service:
		return withOld(o, old, validateService)
	case *corev1.Namespace:
		return withOld(o, old, validateNamespace)
	case *corev1.Node:
		return withOld(o, old, validateNode)
	case *corev1.Endpoints:
		return withOld(o, old, validateEndpoints)
	case *corev1.ConfigMap:
		return withOld(o, old, validateConfigMap)
	case *corev1.Secret:
		return withOld(o, old, validateSecret)
	case *corev1.Event:
		return withOld(o, old, validateEvent)
	case *discoveryv1.EndpointSlice:
		return withOld(o, old, validateEndpointSlice)
	case *coordinationv1.Lease:
		return withOld(o, old, validateLease)
	case *appsv1.Deployment:
		return withOld(o, old, validateDeployment)
	case *appsv1.ReplicaSet:
		return withOld(o, old, validateReplicaSet)
	case *appsv1.DaemonSet:
		return withOld(o, old, validateDaemonSet)
	case *appsv1.StatefulSet:
		return withOld(o, old, validateStatefulSet)
	case *appsv1.ControllerRevision:
		return withOld(o, old, validateControllerRevision)
	case *batchv1.Job:
		return withOld(o, old, validateJob)
	case *batchv1.CronJob:
		return withOld(o, old, validateCronJob)
	case *autoscalingv2.HorizontalPodAutoscaler:
		return withOld(o, old, validateHPA)
	case *certificatesv1.CertificateSigningRequest:
		return withOld(o, old, validateCSR)
	}
	return nil
}

// withOld calls fn with old as the same type as obj, or nil on create. A
// mismatched old object is a bug in the caller, reported as an internal
// error rather than a panic so one bad request cannot take the server down.
func withOld[T comparable](obj T, old runtime.Object, fn func(obj, old T) field.ErrorList) field.ErrorList {
	var zero T
	if obj == zero {
		return field.ErrorList{field.InternalError(nil, fmt.Errorf("validation: nil %T", obj))}
	}
	if old == nil {
		return fn(obj, zero)
	}
	o, ok := old.(T)
	if !ok {
		return field.ErrorList{field.InternalError(nil, fmt.Errorf("validation: old object is %T, want %T", old, obj))}
	}
	return fn(obj, o)
}

// Name rules per kind, as Kubernetes has them.
var (
	nameIsDNSSubdomain = apivalidation.NameIsDNSSubdomain
	nameIsDNSLabel     = apivalidation.NameIsDNSLabel
	// Service names become DNS labels in <svc>.<ns>.svc and environment
	// variable names, so they must start with a letter (RFC 1035).
	nameIsDNS1035Label = apivalidation.NameIsDNS1035Label
)

// validateMeta checks metadata on create and, when old is non-nil, what an
// update may not change. Unlike apimachinery's ValidateObjectMetaUpdate it
// leaves resourceVersion, generation and empty system fields alone: the API
// server owns those and fills them from the stored object.
func validateMeta(meta, old *metav1.ObjectMeta, namespaced bool, nameFn apivalidation.ValidateNameFunc, fld *field.Path) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(meta, namespaced, nameFn, fld)
	for i, f := range meta.Finalizers {
		errs = append(errs, validateKubeFinalizerName(f, fld.Child("finalizers").Index(i))...)
	}
	if old == nil {
		return errs
	}
	if old.DeletionTimestamp != nil {
		errs = append(errs, apivalidation.ValidateNoNewFinalizers(meta.Finalizers, old.Finalizers, fld.Child("finalizers"))...)
	}
	errs = append(errs, apivalidation.ValidateImmutableField(meta.Name, old.Name, fld.Child("name"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(meta.Namespace, old.Namespace, fld.Child("namespace"))...)
	if meta.UID != "" {
		errs = append(errs, apivalidation.ValidateImmutableField(meta.UID, old.UID, fld.Child("uid"))...)
	}
	if !meta.CreationTimestamp.IsZero() {
		errs = append(errs, apivalidation.ValidateImmutableField(meta.CreationTimestamp, old.CreationTimestamp, fld.Child("creationTimestamp"))...)
	}
	if meta.DeletionTimestamp != nil && !meta.DeletionTimestamp.Equal(old.DeletionTimestamp) {
		errs = append(errs, field.Invalid(fld.Child("deletionTimestamp"), meta.DeletionTimestamp, fieldImmutableMsg))
	}
	return errs
}

// standardFinalizers are the finalizer names Kubernetes accepts without a
// domain prefix.
var standardFinalizers = map[string]bool{
	string(corev1.FinalizerKubernetes): true,
	metav1.FinalizerOrphanDependents:   true,
	metav1.FinalizerDeleteDependents:   true,
}

func validateKubeFinalizerName(name string, fld *field.Path) field.ErrorList {
	if !strings.Contains(name, "/") && !standardFinalizers[name] {
		return field.ErrorList{field.Invalid(fld, name, "name is neither a standard finalizer name nor is it fully qualified")}
	}
	return nil
}

func validateNonnegative(v int64, fld *field.Path) field.ErrorList {
	return apivalidation.ValidateNonnegativeField(v, fld)
}

func validatePositive(v int64, fld *field.Path) field.ErrorList {
	if v <= 0 {
		return field.ErrorList{field.Invalid(fld, v, isNotPositiveErrorMsg)}
	}
	return nil
}

func validateImmutable(newVal, oldVal any, fld *field.Path) field.ErrorList {
	return apivalidation.ValidateImmutableField(newVal, oldVal, fld)
}

func validateDNS1123Label(v string, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(v) {
		errs = append(errs, field.Invalid(fld, v, msg))
	}
	return errs
}

func validateDNS1123Subdomain(v string, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(v) {
		errs = append(errs, field.Invalid(fld, v, msg))
	}
	return errs
}

func validateQualifiedName(v string, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsQualifiedName(v) {
		errs = append(errs, field.Invalid(fld, v, msg))
	}
	return errs
}

func validateName(v string, nameFn apivalidation.ValidateNameFunc, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range nameFn(v, false) {
		errs = append(errs, field.Invalid(fld, v, msg))
	}
	return errs
}

// oldMeta is the stored object's metadata, or nil on create.
func oldMeta[T interface {
	comparable
	GetObjectMeta() metav1.Object
}](old T) *metav1.ObjectMeta {
	var zero T
	if old == zero {
		return nil
	}
	m, _ := old.GetObjectMeta().(*metav1.ObjectMeta)
	return m
}

// sortedKeys gives map keys in order, so errors come out in the same order
// on every call.
func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func validateAnnotations(a map[string]string, fld *field.Path) field.ErrorList {
	return apivalidation.ValidateAnnotations(a, fld)
}

func isValidLabelValue(v string) []string {
	return validation.IsValidLabelValue(v)
}

func validateIP(ip string, fld *field.Path) field.ErrorList {
	return validation.IsValidIP(fld, ip)
}

func validateDNS1123SubdomainWithUnderscore(v string, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123SubdomainWithUnderscore(v) {
		errs = append(errs, field.Invalid(fld, v, msg))
	}
	return errs
}

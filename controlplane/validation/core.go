package validation

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxObjectDataSize bounds ConfigMap and Secret payloads: etcd holds whole
// objects and watchers receive them whole.
const maxObjectDataSize = 1 * 1024 * 1024

// Length limits of event fields, as Kubernetes has them.
const (
	reportingInstanceLengthLimit = 128
	actionLengthLimit            = 128
	reasonLengthLimit            = 128
	noteLengthLimit              = 1024
)

func validateNamespace(ns, old *corev1.Namespace) field.ErrorList {
	errs := validateMeta(&ns.ObjectMeta, oldMeta(old), false, nameIsDNSLabel, field.NewPath("metadata"))
	for i, f := range ns.Spec.Finalizers {
		p := field.NewPath("spec", "finalizers").Index(i)
		errs = append(errs, validateQualifiedName(string(f), p)...)
		errs = append(errs, validateKubeFinalizerName(string(f), p)...)
	}
	return errs
}

func validateNode(node, old *corev1.Node) field.ErrorList {
	metaPath := field.NewPath("metadata")
	errs := validateMeta(&node.ObjectMeta, oldMeta(old), false, nameIsDNSSubdomain, metaPath)
	errs = append(errs, validateNodeTaints(node.Spec.Taints, field.NewPath("spec", "taints"))...)
	for _, name := range sortedKeys(node.Status.Capacity) {
		errs = append(errs, validateResourceQuantity(name, node.Status.Capacity[name], field.NewPath("status", "capacity", string(name)))...)
	}
	for _, name := range sortedKeys(node.Status.Allocatable) {
		errs = append(errs, validateResourceQuantity(name, node.Status.Allocatable[name], field.NewPath("status", "allocatable", string(name)))...)
	}

	cidrsPath := field.NewPath("spec", "podCIDRs")
	for i, c := range node.Spec.PodCIDRs {
		errs = append(errs, validation.IsValidCIDR(cidrsPath.Index(i), c)...)
	}
	if len(node.Spec.PodCIDRs) > 1 {
		if len(node.Spec.PodCIDRs) > 2 || strings.Contains(node.Spec.PodCIDRs[0], ":") == strings.Contains(node.Spec.PodCIDRs[1], ":") {
			errs = append(errs, field.Invalid(cidrsPath, node.Spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
		}
		seen := map[string]bool{}
		for i, c := range node.Spec.PodCIDRs {
			if seen[c] {
				errs = append(errs, field.Duplicate(cidrsPath.Index(i), c))
			}
			seen[c] = true
		}
	}
	// podCIDR is the old spelling of podCIDRs[0]; defaulting keeps them in
	// step, so a mismatch means the client set both differently.
	if node.Spec.PodCIDR != "" && (len(node.Spec.PodCIDRs) == 0 || node.Spec.PodCIDRs[0] != node.Spec.PodCIDR) {
		errs = append(errs, field.Invalid(field.NewPath("spec", "podCIDR"), node.Spec.PodCIDR, "must match `podCIDRs[0]`"))
	}

	if old == nil {
		return errs
	}
	addrs := map[corev1.NodeAddress]bool{}
	for i, a := range node.Status.Addresses {
		if addrs[a] {
			errs = append(errs, field.Duplicate(field.NewPath("status", "addresses").Index(i), a))
		}
		addrs[a] = true
	}
	// The CIDR a node's pods got their addresses from cannot move under
	// them; it may only be assigned once.
	if len(old.Spec.PodCIDRs) > 0 && !reflect.DeepEqual(old.Spec.PodCIDRs, node.Spec.PodCIDRs) {
		errs = append(errs, field.Forbidden(cidrsPath, "node updates may not change podCIDR except from \"\" to valid"))
	}
	if old.Spec.ProviderID != "" && old.Spec.ProviderID != node.Spec.ProviderID {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "providerID"), "node updates may not change providerID except from \"\" to valid"))
	}
	if node.Spec.DoNotUseExternalID != old.Spec.DoNotUseExternalID {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "externalID"), "may not be updated"))
	}
	return errs
}

func validateNodeTaints(taints []corev1.Taint, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	type keyEffect struct {
		key    string
		effect corev1.TaintEffect
	}
	seen := map[keyEffect]bool{}
	for i, t := range taints {
		p := fld.Index(i)
		errs = append(errs, metavalidation.ValidateLabelName(t.Key, p.Child("key"))...)
		if msgs := validation.IsValidLabelValue(t.Value); len(msgs) != 0 {
			errs = append(errs, field.Invalid(p.Child("value"), t.Value, strings.Join(msgs, ";")))
		}
		errs = append(errs, validateTaintEffect(t.Effect, p.Child("effect"))...)
		k := keyEffect{t.Key, t.Effect}
		if seen[k] {
			e := field.Duplicate(p, t)
			e.Detail = "taints must be unique by key and effect pair"
			errs = append(errs, e)
			continue
		}
		seen[k] = true
	}
	return errs
}

func validateConfigMap(cm, old *corev1.ConfigMap) field.ErrorList {
	errs := validateMeta(&cm.ObjectMeta, oldMeta(old), true, nameIsDNSSubdomain, field.NewPath("metadata"))
	size := 0
	for _, k := range sortedKeys(cm.Data) {
		p := field.NewPath("data").Key(k)
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(p, k, msg))
		}
		// Both bags become files in the same directory.
		if _, dup := cm.BinaryData[k]; dup {
			errs = append(errs, field.Invalid(p, k, "duplicate of key present in binaryData"))
		}
		size += len(cm.Data[k])
	}
	for _, k := range sortedKeys(cm.BinaryData) {
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(field.NewPath("binaryData").Key(k), k, msg))
		}
		size += len(cm.BinaryData[k])
	}
	if size > maxObjectDataSize {
		errs = append(errs, field.TooLong(field.NewPath(""), "", maxObjectDataSize))
	}
	if old != nil && old.Immutable != nil && *old.Immutable {
		const msg = "field is immutable when `immutable` is set"
		if cm.Immutable == nil || !*cm.Immutable {
			errs = append(errs, field.Forbidden(field.NewPath("immutable"), msg))
		}
		if !reflect.DeepEqual(cm.Data, old.Data) {
			errs = append(errs, field.Forbidden(field.NewPath("data"), msg))
		}
		if !reflect.DeepEqual(cm.BinaryData, old.BinaryData) {
			errs = append(errs, field.Forbidden(field.NewPath("binaryData"), msg))
		}
	}
	return errs
}

func validateSecret(s, old *corev1.Secret) field.ErrorList {
	errs := validateMeta(&s.ObjectMeta, oldMeta(old), true, nameIsDNSSubdomain, field.NewPath("metadata"))
	dataPath := field.NewPath("data")
	size := 0
	for _, k := range sortedKeys(s.Data) {
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(dataPath.Key(k), k, msg))
		}
		size += len(s.Data[k])
	}
	if size > maxObjectDataSize {
		errs = append(errs, field.TooLong(dataPath, "", maxObjectDataSize))
	}
	errs = append(errs, validateSecretType(s, dataPath)...)
	if old == nil {
		return errs
	}
	// Consumers pick how to read a Secret by its type.
	errs = append(errs, validateImmutable(s.Type, old.Type, field.NewPath("type"))...)
	if old.Immutable != nil && *old.Immutable {
		const msg = "field is immutable when `immutable` is set"
		if s.Immutable == nil || !*s.Immutable {
			errs = append(errs, field.Forbidden(field.NewPath("immutable"), msg))
		}
		if !reflect.DeepEqual(s.Data, old.Data) {
			errs = append(errs, field.Forbidden(dataPath, msg))
		}
	}
	return errs
}

// validateSecretType checks that a typed Secret holds the keys its type
// promises.
func validateSecretType(s *corev1.Secret, dataPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	requireJSON := func(key string) {
		b, ok := s.Data[key]
		if !ok {
			errs = append(errs, field.Required(dataPath.Key(key), ""))
			return
		}
		if err := json.Unmarshal(b, &map[string]any{}); err != nil {
			errs = append(errs, field.Invalid(dataPath.Key(key), "<secret contents redacted>", err.Error()))
		}
	}
	switch s.Type {
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			errs = append(errs, field.Required(field.NewPath("metadata", "annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeDockercfg:
		requireJSON(corev1.DockerConfigKey)
	case corev1.SecretTypeDockerConfigJson:
		requireJSON(corev1.DockerConfigJsonKey)
	case corev1.SecretTypeBasicAuth:
		_, u := s.Data[corev1.BasicAuthUsernameKey]
		_, p := s.Data[corev1.BasicAuthPasswordKey]
		if !u && !p {
			errs = append(errs, field.Required(dataPath.Key(corev1.BasicAuthUsernameKey), ""))
			errs = append(errs, field.Required(dataPath.Key(corev1.BasicAuthPasswordKey), ""))
		}
	case corev1.SecretTypeSSHAuth:
		if len(s.Data[corev1.SSHAuthPrivateKey]) == 0 {
			errs = append(errs, field.Required(dataPath.Key(corev1.SSHAuthPrivateKey), ""))
		}
	case corev1.SecretTypeTLS:
		if _, ok := s.Data[corev1.TLSCertKey]; !ok {
			errs = append(errs, field.Required(dataPath.Key(corev1.TLSCertKey), ""))
		}
		if _, ok := s.Data[corev1.TLSPrivateKeyKey]; !ok {
			errs = append(errs, field.Required(dataPath.Key(corev1.TLSPrivateKeyKey), ""))
		}
	}
	return errs
}

// validateEvent follows Kubernetes' rules for core/v1 Events: old-style
// events (no eventTime) only need a namespace that agrees with their
// object; new-style ones must say who reported what.
func validateEvent(ev, old *corev1.Event) field.ErrorList {
	errs := validateMeta(&ev.ObjectMeta, oldMeta(old), true, nameIsDNSSubdomain, field.NewPath("metadata"))
	nsPath := field.NewPath("involvedObject", "namespace")
	if ev.EventTime.IsZero() {
		if ev.InvolvedObject.Namespace == "" {
			// Events about cluster-scoped objects live in "default".
			if ev.Namespace != metav1.NamespaceNone && ev.Namespace != metav1.NamespaceDefault {
				errs = append(errs, field.Invalid(nsPath, ev.InvolvedObject.Namespace, "does not match event.namespace"))
			}
		} else if ev.Namespace != ev.InvolvedObject.Namespace {
			errs = append(errs, field.Invalid(nsPath, ev.InvolvedObject.Namespace, "does not match event.namespace"))
		}
	} else {
		if ev.InvolvedObject.Namespace == "" && ev.Namespace != metav1.NamespaceDefault && ev.Namespace != metav1.NamespaceSystem {
			errs = append(errs, field.Invalid(nsPath, ev.InvolvedObject.Namespace, "does not match event.namespace"))
		}
		if ev.ReportingController == "" {
			errs = append(errs, field.Required(field.NewPath("reportingComponent"), ""))
		}
		errs = append(errs, validateQualifiedName(ev.ReportingController, field.NewPath("reportingComponent"))...)
		if ev.ReportingInstance == "" {
			errs = append(errs, field.Required(field.NewPath("reportingInstance"), ""))
		}
		if len(ev.ReportingInstance) > reportingInstanceLengthLimit {
			errs = append(errs, field.Invalid(field.NewPath("reportingInstance"), "", fmt.Sprintf("can have at most %v characters", reportingInstanceLengthLimit)))
		}
		if ev.Action == "" {
			errs = append(errs, field.Required(field.NewPath("action"), ""))
		}
		if len(ev.Action) > actionLengthLimit {
			errs = append(errs, field.Invalid(field.NewPath("action"), "", fmt.Sprintf("can have at most %v characters", actionLengthLimit)))
		}
		if ev.Reason == "" {
			errs = append(errs, field.Required(field.NewPath("reason"), ""))
		}
		if len(ev.Reason) > reasonLengthLimit {
			errs = append(errs, field.Invalid(field.NewPath("reason"), "", fmt.Sprintf("can have at most %v characters", reasonLengthLimit)))
		}
		if len(ev.Message) > noteLengthLimit {
			errs = append(errs, field.Invalid(field.NewPath("message"), "", fmt.Sprintf("can have at most %v characters", noteLengthLimit)))
		}
	}
	return errs
}

package validation

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func validateLease(l, old *coordinationv1.Lease) field.ErrorList {
	errs := validateMeta(&l.ObjectMeta, oldMeta(old), true, nameIsDNSSubdomain, field.NewPath("metadata"))
	specPath := field.NewPath("spec")
	if d := l.Spec.LeaseDurationSeconds; d != nil && *d <= 0 {
		errs = append(errs, field.Invalid(specPath.Child("leaseDurationSeconds"), *d, "must be greater than 0"))
	}
	if t := l.Spec.LeaseTransitions; t != nil && *t < 0 {
		errs = append(errs, field.Invalid(specPath.Child("leaseTransitions"), *t, "must be greater than or equal to 0"))
	}
	if s := l.Spec.Strategy; s != nil {
		errs = append(errs, validateQualifiedName(string(*s), specPath.Child("strategy"))...)
	}
	if h := l.Spec.PreferredHolder; h != nil && *h != "" && (l.Spec.Strategy == nil || *l.Spec.Strategy == "") {
		errs = append(errs, field.Forbidden(specPath.Child("preferredHolder"), "may only be specified if `strategy` is defined"))
	}
	return errs
}

// hpaMinReplicasLowerBound is 1: scaling to zero needs the HPAScaleToZero
// feature, which weir does not offer.
const hpaMinReplicasLowerBound = 1

// HPA behaviour limits, as Kubernetes has them.
const (
	maxStabilizationWindowSeconds = 3600
	maxScalingPeriodSeconds       = 1800
)

var validMetricSourceTypes = []autoscalingv2.MetricSourceType{
	autoscalingv2.ContainerResourceMetricSourceType, autoscalingv2.ExternalMetricSourceType,
	autoscalingv2.ObjectMetricSourceType, autoscalingv2.PodsMetricSourceType, autoscalingv2.ResourceMetricSourceType,
}

func validateHPA(hpa, old *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
	errs := validateMeta(&hpa.ObjectMeta, oldMeta(old), true, nameIsDNSSubdomain, field.NewPath("metadata"))
	specPath := field.NewPath("spec")
	spec := &hpa.Spec
	if m := spec.MinReplicas; m != nil && *m < hpaMinReplicasLowerBound {
		errs = append(errs, field.Invalid(specPath.Child("minReplicas"), *m, fmt.Sprintf("must be greater than or equal to %d", hpaMinReplicasLowerBound)))
	}
	if spec.MaxReplicas < 1 {
		errs = append(errs, field.Invalid(specPath.Child("maxReplicas"), spec.MaxReplicas, "must be greater than 0"))
	}
	if m := spec.MinReplicas; m != nil && spec.MaxReplicas < *m {
		errs = append(errs, field.Invalid(specPath.Child("maxReplicas"), spec.MaxReplicas, "must be greater than or equal to `minReplicas`"))
	}
	errs = append(errs, validateObjectReference(spec.ScaleTargetRef.Kind, spec.ScaleTargetRef.Name, specPath.Child("scaleTargetRef"))...)
	for i := range spec.Metrics {
		errs = append(errs, validateMetricSpec(&spec.Metrics[i], specPath.Child("metrics").Index(i))...)
	}
	if b := spec.Behavior; b != nil {
		errs = append(errs, validateScalingRules(b.ScaleUp, specPath.Child("behavior", "scaleUp"))...)
		errs = append(errs, validateScalingRules(b.ScaleDown, specPath.Child("behavior", "scaleDown"))...)
	}
	return errs
}

// validateObjectReference checks a kind and name that end up in an API
// path.
func validateObjectReference(kind, name string, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if kind == "" {
		errs = append(errs, field.Required(fld.Child("kind"), ""))
	} else {
		for _, msg := range content.IsPathSegmentName(kind) {
			errs = append(errs, field.Invalid(fld.Child("kind"), kind, msg))
		}
	}
	if name == "" {
		errs = append(errs, field.Required(fld.Child("name"), ""))
	} else {
		for _, msg := range content.IsPathSegmentName(name) {
			errs = append(errs, field.Invalid(fld.Child("name"), name, msg))
		}
	}
	return errs
}

func validateMetricSpec(m *autoscalingv2.MetricSpec, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	present := map[string]bool{}
	if m.Object != nil {
		present["object"] = true
	}
	if m.Pods != nil {
		present["pods"] = true
	}
	if m.Resource != nil {
		present["resource"] = true
	}
	if m.ContainerResource != nil {
		present["containerResource"] = true
	}
	if m.External != nil {
		present["external"] = true
	}

	var expected string
	switch m.Type {
	case autoscalingv2.ObjectMetricSourceType:
		expected = "object"
	case autoscalingv2.PodsMetricSourceType:
		expected = "pods"
	case autoscalingv2.ResourceMetricSourceType:
		expected = "resource"
	case autoscalingv2.ContainerResourceMetricSourceType:
		expected = "containerResource"
	case autoscalingv2.ExternalMetricSourceType:
		expected = "external"
	case "":
		errs = append(errs, field.Required(fld.Child("type"), "must specify a metric source type"))
	default:
		errs = append(errs, field.NotSupported(fld.Child("type"), m.Type, validMetricSourceTypes))
	}
	if expected != "" && !present[expected] {
		errs = append(errs, field.Required(fld.Child(expected), "must populate information for the given metric source"))
	}
	for _, name := range sortedKeys(present) {
		if name != expected {
			errs = append(errs, field.Forbidden(fld.Child(name), "must populate the given metric source only"))
		}
	}
	if len(present) != 1 || !present[expected] {
		return errs
	}

	switch expected {
	case "object":
		p := fld.Child("object")
		errs = append(errs, validateObjectReference(m.Object.DescribedObject.Kind, m.Object.DescribedObject.Name, p.Child("describedObject"))...)
		errs = append(errs, validateMetricIdentifier(m.Object.Metric, p.Child("metric"))...)
		errs = append(errs, validateMetricTarget(m.Object.Target, p.Child("target"))...)
		if m.Object.Target.Value == nil && m.Object.Target.AverageValue == nil {
			errs = append(errs, field.Required(p.Child("target", "averageValue"), "must set either a target value or averageValue"))
		}
	case "pods":
		p := fld.Child("pods")
		errs = append(errs, validateMetricIdentifier(m.Pods.Metric, p.Child("metric"))...)
		errs = append(errs, validateMetricTarget(m.Pods.Target, p.Child("target"))...)
		if m.Pods.Target.AverageValue == nil {
			errs = append(errs, field.Required(p.Child("target", "averageValue"), "must specify a positive target averageValue"))
		}
	case "resource":
		p := fld.Child("resource")
		if m.Resource.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), "must specify a resource name"))
		}
		errs = append(errs, validateResourceTarget(m.Resource.Target, p.Child("target"))...)
	case "containerResource":
		p := fld.Child("containerResource")
		if m.ContainerResource.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), "must specify a resource name"))
		}
		if m.ContainerResource.Container == "" {
			errs = append(errs, field.Required(p.Child("container"), "must specify a container"))
		} else {
			errs = append(errs, validateDNS1123Label(m.ContainerResource.Container, p.Child("container"))...)
		}
		errs = append(errs, validateResourceTarget(m.ContainerResource.Target, p.Child("target"))...)
	case "external":
		p := fld.Child("external")
		errs = append(errs, validateMetricIdentifier(m.External.Metric, p.Child("metric"))...)
		errs = append(errs, validateMetricTarget(m.External.Target, p.Child("target"))...)
		if m.External.Target.Value == nil && m.External.Target.AverageValue == nil {
			errs = append(errs, field.Required(p.Child("target", "averageValue"), "must set either a target value for metric or a per-pod target"))
		}
	}
	return errs
}

func validateResourceTarget(t autoscalingv2.MetricTarget, fld *field.Path) field.ErrorList {
	errs := validateMetricTarget(t, fld)
	if t.AverageUtilization == nil && t.AverageValue == nil {
		errs = append(errs, field.Required(fld.Child("averageUtilization"), "must set either a target raw value or a target utilization"))
	}
	if t.AverageUtilization != nil && t.AverageValue != nil {
		errs = append(errs, field.Forbidden(fld.Child("averageValue"), "may not set both a target raw value and a target utilization"))
	}
	return errs
}

func validateMetricIdentifier(id autoscalingv2.MetricIdentifier, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if id.Name == "" {
		errs = append(errs, field.Required(fld.Child("name"), "must specify a metric name"))
	} else {
		for _, msg := range content.IsPathSegmentName(id.Name) {
			errs = append(errs, field.Invalid(fld.Child("name"), id.Name, msg))
		}
	}
	return append(errs, metavalidation.ValidateLabelSelector(id.Selector, metavalidation.LabelSelectorValidationOptions{}, fld.Child("selector"))...)
}

func validateMetricTarget(t autoscalingv2.MetricTarget, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch t.Type {
	case autoscalingv2.UtilizationMetricType, autoscalingv2.ValueMetricType, autoscalingv2.AverageValueMetricType:
	case "":
		errs = append(errs, field.Required(fld.Child("type"), "must specify a metric target type"))
	default:
		errs = append(errs, field.Invalid(fld.Child("type"), t.Type, "must be either Utilization, Value, or AverageValue"))
	}
	if t.Value != nil && t.Value.Sign() != 1 {
		errs = append(errs, field.Invalid(fld.Child("value"), t.Value.String(), "must be positive"))
	}
	if t.AverageValue != nil && t.AverageValue.Sign() != 1 {
		errs = append(errs, field.Invalid(fld.Child("averageValue"), t.AverageValue.String(), "must be positive"))
	}
	if t.AverageUtilization != nil && *t.AverageUtilization < 1 {
		errs = append(errs, field.Invalid(fld.Child("averageUtilization"), *t.AverageUtilization, "must be greater than 0"))
	}
	return errs
}

func validateScalingRules(r *autoscalingv2.HPAScalingRules, fld *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	var errs field.ErrorList
	if w := r.StabilizationWindowSeconds; w != nil {
		if *w < 0 {
			errs = append(errs, field.Invalid(fld.Child("stabilizationWindowSeconds"), *w, isNegativeErrorMsg))
		}
		if *w > maxStabilizationWindowSeconds {
			errs = append(errs, field.Invalid(fld.Child("stabilizationWindowSeconds"), *w, fmt.Sprintf("must be less than or equal to %v", maxStabilizationWindowSeconds)))
		}
	}
	if sp := r.SelectPolicy; sp != nil {
		valid := []autoscalingv2.ScalingPolicySelect{autoscalingv2.DisabledPolicySelect, autoscalingv2.MaxChangePolicySelect, autoscalingv2.MinChangePolicySelect}
		if !slices.Contains(valid, *sp) {
			errs = append(errs, field.NotSupported(fld.Child("selectPolicy"), *sp, valid))
		}
	}
	if len(r.Policies) == 0 {
		errs = append(errs, field.Required(fld.Child("policies"), "must specify at least one Policy"))
	}
	for i, p := range r.Policies {
		pp := fld.Child("policies").Index(i)
		if p.Type != autoscalingv2.PodsScalingPolicy && p.Type != autoscalingv2.PercentScalingPolicy {
			errs = append(errs, field.Invalid(pp.Child("type"), p.Type, "must be either Pods or Percent"))
		}
		if p.Value <= 0 {
			errs = append(errs, field.Invalid(pp.Child("value"), p.Value, "must be greater than zero"))
		}
		if p.PeriodSeconds <= 0 {
			errs = append(errs, field.Invalid(pp.Child("periodSeconds"), p.PeriodSeconds, "must be greater than zero"))
		}
		if p.PeriodSeconds > maxScalingPeriodSeconds {
			errs = append(errs, field.Invalid(pp.Child("periodSeconds"), p.PeriodSeconds, fmt.Sprintf("must be less than or equal to %v", maxScalingPeriodSeconds)))
		}
	}
	if t := r.Tolerance; t != nil && t.Sign() < 0 {
		errs = append(errs, field.Invalid(fld.Child("tolerance"), t.String(), "must be greater than or equal to 0"))
	}
	return errs
}

// legacyUnknownSignerName was for certificates/v1beta1 clients only.
const legacyUnknownSignerName = "kubernetes.io/legacy-unknown"

// minCSRExpirationSeconds: shorter certificates would expire before
// they are rotated.
const minCSRExpirationSeconds = 600

var validKeyUsages = []certificatesv1.KeyUsage{
	certificatesv1.UsageSigning, certificatesv1.UsageDigitalSignature, certificatesv1.UsageContentCommitment,
	certificatesv1.UsageKeyEncipherment, certificatesv1.UsageKeyAgreement, certificatesv1.UsageDataEncipherment,
	certificatesv1.UsageCertSign, certificatesv1.UsageCRLSign, certificatesv1.UsageEncipherOnly,
	certificatesv1.UsageDecipherOnly, certificatesv1.UsageAny, certificatesv1.UsageServerAuth,
	certificatesv1.UsageClientAuth, certificatesv1.UsageCodeSigning, certificatesv1.UsageEmailProtection,
	certificatesv1.UsageSMIME, certificatesv1.UsageIPsecEndSystem, certificatesv1.UsageIPsecTunnel,
	certificatesv1.UsageIPsecUser, certificatesv1.UsageTimestamping, certificatesv1.UsageOCSPSigning,
	certificatesv1.UsageMicrosoftSGC, certificatesv1.UsageNetscapeSGC,
}

// csrName allows any name that fits in a URL path segment, as Kubernetes
// does: CSR names are often generated from the requester.
func csrName(name string, prefix bool) []string {
	if prefix {
		return content.IsPathSegmentPrefix(name)
	}
	return content.IsPathSegmentName(name)
}

func validateCSR(csr, old *certificatesv1.CertificateSigningRequest) field.ErrorList {
	errs := validateMeta(&csr.ObjectMeta, oldMeta(old), false, csrName, field.NewPath("metadata"))
	specPath := field.NewPath("spec")
	spec := &csr.Spec
	if err := checkCSRRequest(spec.Request); err != nil {
		errs = append(errs, field.Invalid(specPath.Child("request"), spec.Request, err.Error()))
	}
	usagesPath := specPath.Child("usages")
	if len(spec.Usages) == 0 {
		errs = append(errs, field.Required(usagesPath, ""))
	}
	seen := map[certificatesv1.KeyUsage]bool{}
	for i, u := range spec.Usages {
		if !slices.Contains(validKeyUsages, u) {
			errs = append(errs, field.NotSupported(usagesPath.Index(i), u, validKeyUsages))
		}
		if seen[u] {
			errs = append(errs, field.Duplicate(usagesPath.Index(i), u))
		}
		seen[u] = true
	}
	if spec.SignerName == legacyUnknownSignerName {
		errs = append(errs, field.Invalid(specPath.Child("signerName"), spec.SignerName, "the legacy signerName is not allowed via this API version"))
	} else {
		errs = append(errs, validateSignerName(spec.SignerName, specPath.Child("signerName"))...)
	}
	if e := spec.ExpirationSeconds; e != nil && *e < minCSRExpirationSeconds {
		errs = append(errs, field.Invalid(specPath.Child("expirationSeconds"), *e, "may not specify a duration less than 600 seconds (10 minutes)"))
	}
	errs = append(errs, validateCSRConditions(csr.Status.Conditions, field.NewPath("status", "conditions"))...)
	if old != nil {
		// A request is signed as submitted; approvers judge what they saw.
		errs = append(errs, validateImmutable(csr.Spec, old.Spec, specPath)...)
	}
	return errs
}

func checkCSRRequest(req []byte) error {
	block, _ := pem.Decode(req)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return errors.New("PEM block type must be CERTIFICATE REQUEST")
	}
	cr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return err
	}
	return cr.CheckSignature()
}

// validateSignerName requires "<domain>/<path>", the form every signer name
// has, with a domain of at least two labels.
func validateSignerName(name string, fld *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(fld, "")}
	}
	domain, path, ok := strings.Cut(name, "/")
	if !ok || strings.Contains(path, "/") {
		return field.ErrorList{field.Invalid(fld, name, "must be a fully qualified domain and path of the form 'example.com/signer-name'")}
	}
	var errs field.ErrorList
	if len(domain) > validation.DNS1123SubdomainMaxLength {
		errs = append(errs, field.TooLong(fld, domain, validation.DNS1123SubdomainMaxLength))
	}
	labels := strings.Split(domain, ".")
	for _, l := range labels {
		if msgs := validation.IsDNS1123Label(l); len(msgs) > 0 {
			for _, msg := range msgs {
				errs = append(errs, field.Invalid(fld, domain, fmt.Sprintf("validating label %q: %s", l, msg)))
			}
			break
		}
	}
	if len(labels) < 2 {
		errs = append(errs, field.Invalid(fld, domain, "should be a domain with at least two segments separated by dots"))
	}
	if path == "" {
		errs = append(errs, field.Invalid(fld, name, "path segment must not be empty"))
	} else {
		for _, msg := range validation.IsDNS1123Subdomain(strings.ToLower(path)) {
			errs = append(errs, field.Invalid(fld, path, fmt.Sprintf("validating path %q: %s", path, msg)))
		}
	}
	return errs
}

func validateCSRConditions(conds []certificatesv1.CertificateSigningRequestCondition, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[certificatesv1.RequestConditionType]bool{}
	for i, c := range conds {
		p := fld.Index(i)
		if c.Type == "" {
			errs = append(errs, field.Required(p.Child("type"), ""))
		}
		switch c.Status {
		case corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown:
		case "":
			errs = append(errs, field.Required(p.Child("status"), ""))
		default:
			errs = append(errs, field.NotSupported(p.Child("status"), c.Status, []corev1.ConditionStatus{corev1.ConditionFalse, corev1.ConditionTrue, corev1.ConditionUnknown}))
		}
		switch c.Type {
		case certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed:
			if seen[c.Type] {
				errs = append(errs, field.Duplicate(p.Child("type"), c.Type))
			}
			if (c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied) && c.Status != corev1.ConditionTrue {
				errs = append(errs, field.NotSupported(p.Child("status"), c.Status, []corev1.ConditionStatus{corev1.ConditionTrue}))
			}
		}
		seen[c.Type] = true
	}
	if seen[certificatesv1.CertificateApproved] && seen[certificatesv1.CertificateDenied] {
		errs = append(errs, field.Invalid(fld, conds, "Approved and Denied conditions are mutually exclusive"))
	}
	return errs
}

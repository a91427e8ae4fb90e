package validation

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateWorkloadSelector checks a controller's selector: required,
// well-formed, not empty (an empty selector would adopt every Pod in the
// namespace), and matching the template it stamps Pods from.
func validateWorkloadSelector(sel *metav1.LabelSelector, t *corev1.PodTemplateSpec, kind string, fld *field.Path) field.ErrorList {
	selPath := fld.Child("selector")
	if sel == nil {
		return field.ErrorList{field.Required(selPath, "")}
	}
	errs := metavalidation.ValidateLabelSelector(sel, metavalidation.LabelSelectorValidationOptions{}, selPath)
	if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		errs = append(errs, field.Invalid(selPath, sel, fmt.Sprintf("empty selector is invalid for %s", kind)))
	}
	if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
		return append(errs, field.Invalid(selPath, sel, "invalid label selector"))
	}
	return append(errs, validateTemplateMatchesSelector(t, sel, fld.Child("template"))...)
}

// validateControllerTemplate checks a template a controller keeps running:
// it must restart its containers itself and may not time out.
func validateControllerTemplate(t *corev1.PodTemplateSpec, kind string, fld *field.Path) field.ErrorList {
	errs := validatePodTemplateSpec(t, fld)
	if t.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(fld.Child("spec", "restartPolicy"), t.Spec.RestartPolicy, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if t.Spec.ActiveDeadlineSeconds != nil {
		p := fld.Child("spec", "activeDeadlineSeconds")
		if kind == "StatefulSet" {
			errs = append(errs, field.Invalid(p, t.Spec.ActiveDeadlineSeconds, "must not be specified"))
		} else {
			errs = append(errs, field.Forbidden(p, fmt.Sprintf("activeDeadlineSeconds in %s is not Supported", kind)))
		}
	}
	return errs
}

func validateDeployment(d, old *appsv1.Deployment) field.ErrorList {
	errs := validateMeta(&d.ObjectMeta, oldMeta(old), true, nameIsDNSSubdomain, field.NewPath("metadata"))
	specPath := field.NewPath("spec")
	spec := &d.Spec
	errs = append(errs, validateReplicas(spec.Replicas, specPath.Child("replicas"))...)
	errs = append(errs, validateWorkloadSelector(spec.Selector, &spec.Template, "deployment", specPath)...)
	errs = append(errs, validateControllerTemplate(&spec.Template, "ReplicaSet", specPath.Child("template"))...)

	strategyPath := specPath.Child("strategy")
	switch spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if spec.Strategy.RollingUpdate != nil {
			errs = append(errs, field.Forbidden(strategyPath.Child("rollingUpdate"), fmt.Sprintf("may not be specified when strategy `type` is '%s'", appsv1.RecreateDeploymentStrategyType)))
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		ru := spec.Strategy.RollingUpdate
		if ru == nil {
			errs = append(errs, field.Required(strategyPath.Child("rollingUpdate"), "this should be defaulted and never be nil"))
			break
		}
		errs = append(errs, validateSurgeUnavailable(ru.MaxSurge, ru.MaxUnavailable, strategyPath.Child("rollingUpdate"))...)
	default:
		errs = append(errs, field.NotSupported(strategyPath, spec.Strategy, []appsv1.DeploymentStrategyType{appsv1.RecreateDeploymentStrategyType, appsv1.RollingUpdateDeploymentStrategyType}))
	}

	errs = append(errs, validateNonnegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	if spec.RevisionHistoryLimit != nil {
		errs = append(errs, validateNonnegative(int64(*spec.RevisionHistoryLimit), specPath.Child("revisionHistoryLimit"))...)
	}
	if pds := spec.ProgressDeadlineSeconds; pds != nil {
		errs = append(errs, validatePositive(int64(*pds), specPath.Child("progressDeadlineSeconds"))...)
		// A deadline no longer than minReadySeconds would mark every
		// rollout as failed before a Pod could count as available.
		if *pds <= spec.MinReadySeconds {
			errs = append(errs, field.Invalid(specPath.Child("progressDeadlineSeconds"), *pds, "must be greater than minReadySeconds"))
		}
	}
	if old != nil {
		// Changing the selector would orphan the Pods the Deployment owns
		// and adopt others; apps/v1 made it immutable for that reason.
		errs = append(errs, validateImmutable(spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
	}
	return errs
}

func validateReplicaSet(rs, old *appsv1.ReplicaSet) field.ErrorList {
	errs := validateMeta(&rs.ObjectMeta, oldMeta(old), true, nameIsDNSSubdomain, field.NewPath("metadata"))
	specPath := field.NewPath("spec")
	spec := &rs.Spec
	errs = append(errs, validateReplicas(spec.Replicas, specPath.Child("replicas"))...)
	errs = append(errs, validateNonnegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	// Kubernetes says "deployment" here too.
	errs = append(errs, validateWorkloadSelector(spec.Selector, &spec.Template, "deployment", specPath)...)
	errs = append(errs, validateControllerTemplate(&spec.Template, "ReplicaSet", specPath.Child("template"))...)
	if old != nil {
		errs = append(errs, validateImmutable(spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
	}
	return errs
}

func validateDaemonSet(ds, old *appsv1.DaemonSet) field.ErrorList {
	errs := validateMeta(&ds.ObjectMeta, oldMeta(old), true, nameIsDNSSubdomain, field.NewPath("metadata"))
	specPath := field.NewPath("spec")
	spec := &ds.Spec
	errs = append(errs, validateWorkloadSelector(spec.Selector, &spec.Template, "daemonset", specPath)...)
	errs = append(errs, validateControllerTemplate(&spec.Template, "DaemonSet", specPath.Child("template"))...)
	errs = append(errs, validateNonnegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)

	strategyPath := specPath.Child("updateStrategy")
	switch spec.UpdateStrategy.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
	case appsv1.RollingUpdateDaemonSetStrategyType:
		ru := spec.UpdateStrategy.RollingUpdate
		if ru == nil {
			errs = append(errs, field.Required(strategyPath.Child("rollingUpdate"), ""))
			break
		}
		errs = append(errs, validateSurgeUnavailable(ru.MaxSurge, ru.MaxUnavailable, strategyPath.Child("rollingUpdate"))...)
		if ru.MaxSurge != nil {
			errs = append(errs, isNotMoreThan100Percent(*ru.MaxSurge, strategyPath.Child("rollingUpdate", "maxSurge"))...)
		}
	default:
		errs = append(errs, field.NotSupported(strategyPath, spec.UpdateStrategy, []appsv1.DaemonSetUpdateStrategyType{appsv1.OnDeleteDaemonSetStrategyType, appsv1.RollingUpdateDaemonSetStrategyType}))
	}
	if spec.RevisionHistoryLimit != nil {
		errs = append(errs, validateNonnegative(int64(*spec.RevisionHistoryLimit), specPath.Child("revisionHistoryLimit"))...)
	}
	if old != nil {
		errs = append(errs, validateImmutable(spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
	}
	return errs
}

// statefulSetUpdatable names the fields a StatefulSet update may change, in
// Kubernetes' message.
const statefulSetUpdatable = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"

func validateStatefulSet(ss, old *appsv1.StatefulSet) field.ErrorList {
	errs := validateMeta(&ss.ObjectMeta, oldMeta(old), true, nameIsDNSSubdomain, field.NewPath("metadata"))
	specPath := field.NewPath("spec")
	spec := &ss.Spec

	switch spec.PodManagementPolicy {
	case "":
		errs = append(errs, field.Required(specPath.Child("podManagementPolicy"), ""))
	case appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement:
	default:
		errs = append(errs, field.Invalid(specPath.Child("podManagementPolicy"), spec.PodManagementPolicy, fmt.Sprintf("must be '%s' or '%s'", appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement)))
	}
	strategyPath := specPath.Child("updateStrategy")
	switch spec.UpdateStrategy.Type {
	case "":
		errs = append(errs, field.Required(strategyPath, ""))
	case appsv1.OnDeleteStatefulSetStrategyType:
		if spec.UpdateStrategy.RollingUpdate != nil {
			errs = append(errs, field.Invalid(strategyPath.Child("rollingUpdate"), spec.UpdateStrategy.RollingUpdate, fmt.Sprintf("only allowed for updateStrategy '%s'", appsv1.RollingUpdateStatefulSetStrategyType)))
		}
	case appsv1.RollingUpdateStatefulSetStrategyType:
		if ru := spec.UpdateStrategy.RollingUpdate; ru != nil {
			if ru.Partition != nil {
				errs = append(errs, validateNonnegative(int64(*ru.Partition), strategyPath.Child("rollingUpdate", "partition"))...)
			}
			if ru.MaxUnavailable != nil {
				p := strategyPath.Child("rollingUpdate", "maxUnavailable")
				errs = append(errs, validatePositiveIntOrPercent(*ru.MaxUnavailable, p)...)
				if v, _ := intOrPercentValue(*ru.MaxUnavailable); v == 0 {
					errs = append(errs, field.Invalid(p, *ru.MaxUnavailable, "cannot be 0"))
				}
				errs = append(errs, isNotMoreThan100Percent(*ru.MaxUnavailable, p)...)
			}
		}
	default:
		errs = append(errs, field.Invalid(strategyPath, spec.UpdateStrategy, fmt.Sprintf("must be '%s' or '%s'", appsv1.RollingUpdateStatefulSetStrategyType, appsv1.OnDeleteStatefulSetStrategyType)))
	}

	if p := spec.PersistentVolumeClaimRetentionPolicy; p != nil {
		pp := specPath.Child("persistentVolumeClaimRetentionPolicy")
		valid := []appsv1.PersistentVolumeClaimRetentionPolicyType{appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType}
		for _, f := range []struct {
			name string
			v    appsv1.PersistentVolumeClaimRetentionPolicyType
		}{{"whenDeleted", p.WhenDeleted}, {"whenScaled", p.WhenScaled}} {
			switch f.v {
			case appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType:
			default:
				errs = append(errs, field.NotSupported(pp.Child(f.name), f.v, valid))
			}
		}
	}
	errs = append(errs, validateReplicas(spec.Replicas, specPath.Child("replicas"))...)
	if spec.Ordinals != nil {
		errs = append(errs, validateNonnegative(int64(spec.Ordinals.Start), specPath.Child("ordinals", "start"))...)
	}
	errs = append(errs, validateNonnegative(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	if spec.RevisionHistoryLimit != nil {
		errs = append(errs, validateNonnegative(int64(*spec.RevisionHistoryLimit), specPath.Child("revisionHistoryLimit"))...)
	}
	errs = append(errs, validateWorkloadSelector(spec.Selector, &spec.Template, "statefulset", specPath)...)
	// Each claim template becomes a volume of the same name in every Pod, so
	// its name must be a volume name, and the template's mounts may refer
	// to it. A template volume of the same name is replaced by the claim.
	t := spec.Template.DeepCopy()
	for i, c := range spec.VolumeClaimTemplates {
		namePath := specPath.Child("volumeClaimTemplates").Index(i).Child("metadata", "name")
		if c.Name == "" {
			errs = append(errs, field.Required(namePath, ""))
			continue
		}
		if nameErrs := validateDNS1123Label(c.Name, namePath); len(nameErrs) > 0 {
			errs = append(errs, nameErrs...)
			continue
		}
		claimVol := corev1.Volume{
			Name:         c.Name,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.Name}},
		}
		// Replace in place so errors about the template's own volumes keep
		// their indexes.
		if j := slices.IndexFunc(t.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.Name }); j >= 0 {
			t.Spec.Volumes[j] = claimVol
		} else {
			t.Spec.Volumes = append(t.Spec.Volumes, claimVol)
		}
	}
	errs = append(errs, validateControllerTemplate(t, "StatefulSet", specPath.Child("template"))...)

	if old == nil {
		return errs
	}
	// The identity of a StatefulSet's Pods and their storage hangs on the
	// rest of the spec.
	cur := ss.Spec.DeepCopy()
	cur.Replicas = old.Spec.Replicas
	cur.Ordinals = old.Spec.Ordinals
	cur.Template = old.Spec.Template
	cur.UpdateStrategy = old.Spec.UpdateStrategy
	cur.RevisionHistoryLimit = old.Spec.RevisionHistoryLimit
	cur.PersistentVolumeClaimRetentionPolicy = old.Spec.PersistentVolumeClaimRetentionPolicy
	cur.MinReadySeconds = old.Spec.MinReadySeconds
	// Claim templates read back with defaults (and a status) that a
	// client's copy may lack; only what the user wrote counts.
	cur.VolumeClaimTemplates = stripClaimStatus(cur.VolumeClaimTemplates)
	oldSpec := old.Spec.DeepCopy()
	oldSpec.VolumeClaimTemplates = stripClaimStatus(oldSpec.VolumeClaimTemplates)
	if !reflect.DeepEqual(cur, oldSpec) {
		errs = append(errs, field.Forbidden(specPath, statefulSetUpdatable))
	}
	return errs
}

func stripClaimStatus(cs []corev1.PersistentVolumeClaim) []corev1.PersistentVolumeClaim {
	for i := range cs {
		cs[i].Status = corev1.PersistentVolumeClaimStatus{}
	}
	return cs
}

func validateControllerRevision(cr, old *appsv1.ControllerRevision) field.ErrorList {
	errs := validateMeta(&cr.ObjectMeta, oldMeta(old), true, nameIsDNSSubdomain, field.NewPath("metadata"))
	if cr.Data.Raw == nil && cr.Data.Object == nil {
		errs = append(errs, field.Required(field.NewPath("data"), "data is mandatory"))
	}
	errs = append(errs, validateNonnegative(cr.Revision, field.NewPath("revision"))...)
	if old != nil && !reflect.DeepEqual(cr.Data, old.Data) {
		// A revision is a snapshot controllers roll back to.
		errs = append(errs, field.Invalid(field.NewPath("data"), cr.Data, fieldImmutableMsg))
	}
	return errs
}

func validateReplicas(r *int32, fld *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	return validateNonnegative(int64(*r), fld)
}

// validateSurgeUnavailable: a rollout that may neither add nor remove a Pod
// could never make progress.
func validateSurgeUnavailable(surge, unavailable *intstr.IntOrString, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if unavailable != nil {
		errs = append(errs, validatePositiveIntOrPercent(*unavailable, fld.Child("maxUnavailable"))...)
	}
	if surge != nil {
		errs = append(errs, validatePositiveIntOrPercent(*surge, fld.Child("maxSurge"))...)
	}
	u, s := 0, 0
	if unavailable != nil {
		u, _ = intOrPercentValue(*unavailable)
	}
	if surge != nil {
		s, _ = intOrPercentValue(*surge)
	}
	if u == 0 && s == 0 {
		errs = append(errs, field.Invalid(fld.Child("maxUnavailable"), unavailableValue(unavailable), "may not be 0 when `maxSurge` is 0"))
	}
	if unavailable != nil {
		errs = append(errs, isNotMoreThan100Percent(*unavailable, fld.Child("maxUnavailable"))...)
	}
	return errs
}

func unavailableValue(v *intstr.IntOrString) any {
	if v == nil {
		return nil
	}
	return *v
}

func validatePositiveIntOrPercent(v intstr.IntOrString, fld *field.Path) field.ErrorList {
	switch v.Type {
	case intstr.String:
		var errs field.ErrorList
		for _, msg := range validation.IsValidPercent(v.StrVal) {
			errs = append(errs, field.Invalid(fld, v, msg))
		}
		return errs
	case intstr.Int:
		return validateNonnegative(int64(v.IntValue()), fld)
	}
	return field.ErrorList{field.Invalid(fld, v, "must be an integer or percentage (e.g '5%')")}
}

// intOrPercentValue returns the number in v and whether it is a
// percentage.
func intOrPercentValue(v intstr.IntOrString) (int, bool) {
	if v.Type == intstr.Int {
		return v.IntValue(), false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(v.StrVal, "%"))
	if err != nil {
		return 0, true
	}
	return n, true
}

func isNotMoreThan100Percent(v intstr.IntOrString, fld *field.Path) field.ErrorList {
	if n, pct := intOrPercentValue(v); pct && n > 100 {
		return field.ErrorList{field.Invalid(fld, v, "must not be greater than 100%")}
	}
	return nil
}

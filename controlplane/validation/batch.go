package validation

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	// maxIndexedJobCompletions bounds Indexed Jobs, whose status records
	// every finished index.
	maxIndexedJobCompletions = 100000
	// maxCronJobNameLength leaves room for the 11-character suffix the
	// controller appends to name each Job, which must stay a DNS label.
	maxCronJobNameLength = 63 - 11

	legacyJobNameLabel       = "job-name"
	legacyControllerUIDLabel = "controller-uid"
)

func validateJob(job, old *batchv1.Job) field.ErrorList {
	errs := validateMeta(&job.ObjectMeta, oldMeta(old), true, nameIsDNSSubdomain, field.NewPath("metadata"))
	specPath := field.NewPath("spec")
	manual := job.Spec.ManualSelector != nil && *job.Spec.ManualSelector
	if !manual && job.UID != "" {
		// Validate the new labels only where the Job was made with them.
		batchLabels := old == nil
		if old != nil {
			_, batchLabels = old.Spec.Template.Labels[batchv1.ControllerUidLabel]
		}
		errs = append(errs, validateGeneratedSelector(job, batchLabels)...)
	}
	errs = append(errs, validateJobSpec(&job.Spec, specPath)...)
	errs = append(errs, validateJobSelector(&job.Spec, specPath)...)
	if old != nil {
		errs = append(errs, validateJobUpdate(job, old, specPath)...)
	}
	return errs
}

// validateGeneratedSelector checks that a Job which asked for a generated
// selector carries the one defaulting generated: selecting by the Job's UID
// is what keeps two Jobs with equal labels from adopting each other's Pods.
func validateGeneratedSelector(job *batchv1.Job, batchLabels bool) field.ErrorList {
	if job.Spec.Template.Labels == nil || job.Spec.Selector == nil {
		// Missing pieces are reported as required elsewhere.
		return nil
	}
	metaPath := field.NewPath("spec", "template", "metadata")
	uid := string(job.UID)
	errs := validateHasLabel(job.Spec.Template.ObjectMeta, metaPath, legacyControllerUIDLabel, uid)
	errs = append(errs, validateHasLabel(job.Spec.Template.ObjectMeta, metaPath, legacyJobNameLabel, job.Name)...)
	want := map[string]string{legacyControllerUIDLabel: uid}
	if batchLabels {
		errs = append(errs, validateHasLabel(job.Spec.Template.ObjectMeta, metaPath, batchv1.ControllerUidLabel, uid)...)
		errs = append(errs, validateHasLabel(job.Spec.Template.ObjectMeta, metaPath, batchv1.JobNameLabel, job.Name)...)
		want = map[string]string{batchv1.ControllerUidLabel: uid}
	}
	if !apiequality.Semantic.DeepEqual(job.Spec.Selector, &metav1.LabelSelector{MatchLabels: want}) {
		errs = append(errs, field.Invalid(field.NewPath("spec", "selector"), job.Spec.Selector, "`selector` not auto-generated"))
	}
	return errs
}

func validateHasLabel(meta metav1.ObjectMeta, fld *field.Path, key, want string) field.ErrorList {
	v, ok := meta.Labels[key]
	if !ok {
		return field.ErrorList{field.Required(fld.Child("labels").Key(key), fmt.Sprintf("must be '%s'", want))}
	}
	if v != want {
		return field.ErrorList{field.Invalid(fld.Child("labels").Key(key), meta.Labels, fmt.Sprintf("must be '%s'", want))}
	}
	return nil
}

func validateJobSelector(spec *batchv1.JobSpec, fld *field.Path) field.ErrorList {
	selPath := fld.Child("selector")
	if spec.Selector == nil {
		return field.ErrorList{field.Required(selPath, "")}
	}
	errs := metavalidation.ValidateLabelSelector(spec.Selector, metavalidation.LabelSelectorValidationOptions{}, selPath)
	// Generated or not, the selector must match the Pods the Job makes.
	return append(errs, validateTemplateMatchesSelector(&spec.Template, spec.Selector, fld.Child("template"))...)
}

// validateJobSpec holds what a Job and a CronJob's job template share.
func validateJobSpec(spec *batchv1.JobSpec, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, f := range []struct {
		name string
		v    *int32
	}{
		{"parallelism", spec.Parallelism},
		{"completions", spec.Completions},
		{"backoffLimit", spec.BackoffLimit},
		{"ttlSecondsAfterFinished", spec.TTLSecondsAfterFinished},
		{"backoffLimitPerIndex", spec.BackoffLimitPerIndex},
		{"maxFailedIndexes", spec.MaxFailedIndexes},
	} {
		if f.v != nil {
			errs = append(errs, validateNonnegative(int64(*f.v), fld.Child(f.name))...)
		}
	}
	if spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, validateNonnegative(*spec.ActiveDeadlineSeconds, fld.Child("activeDeadlineSeconds"))...)
	}

	indexed := spec.CompletionMode != nil && *spec.CompletionMode == batchv1.IndexedCompletion
	if m := spec.CompletionMode; m != nil {
		if *m != batchv1.NonIndexedCompletion && *m != batchv1.IndexedCompletion {
			errs = append(errs, field.NotSupported(fld.Child("completionMode"), *m, []batchv1.CompletionMode{batchv1.NonIndexedCompletion, batchv1.IndexedCompletion}))
		}
	}
	if indexed {
		if spec.Completions == nil {
			errs = append(errs, field.Required(fld.Child("completions"), fmt.Sprintf("when completion mode is %s", batchv1.IndexedCompletion)))
		} else if *spec.Completions > maxIndexedJobCompletions {
			errs = append(errs, field.Invalid(fld.Child("completions"), *spec.Completions, fmt.Sprintf("must be less than or equal to %d when completion mode is %s", maxIndexedJobCompletions, batchv1.IndexedCompletion)))
		}
		if spec.Parallelism != nil && *spec.Parallelism > maxIndexedJobCompletions {
			errs = append(errs, field.Invalid(fld.Child("parallelism"), *spec.Parallelism, fmt.Sprintf("must be less than or equal to %d when completion mode is %s", maxIndexedJobCompletions, batchv1.IndexedCompletion)))
		}
	}
	if spec.BackoffLimitPerIndex != nil && !indexed {
		errs = append(errs, field.Forbidden(fld.Child("backoffLimitPerIndex"), "requires indexed completion mode"))
	}
	if spec.MaxFailedIndexes != nil {
		switch {
		case spec.BackoffLimitPerIndex == nil:
			errs = append(errs, field.Required(fld.Child("backoffLimitPerIndex"), "when maxFailedIndexes is specified"))
		case spec.Completions != nil && *spec.MaxFailedIndexes > *spec.Completions:
			errs = append(errs, field.Invalid(fld.Child("maxFailedIndexes"), *spec.MaxFailedIndexes, "must be less than or equal to completions"))
		}
	}

	if p := spec.PodReplacementPolicy; p != nil {
		valid := []batchv1.PodReplacementPolicy{batchv1.TerminatingOrFailed, batchv1.Failed}
		if spec.PodFailurePolicy != nil {
			// Counting a Pod as failed before it is gone is what the
			// failure policy needs to judge it.
			valid = []batchv1.PodReplacementPolicy{batchv1.Failed}
		}
		if !slices.Contains(valid, *p) {
			errs = append(errs, field.NotSupported(fld.Child("podReplacementPolicy"), *p, valid))
		}
	}

	tPath := fld.Child("template")
	errs = append(errs, validatePodTemplateSpec(&spec.Template, tPath)...)
	// A Job's Pods run to completion; the Job controller, not the kubelet,
	// decides about replacements, so Always makes no sense.
	switch rp := spec.Template.Spec.RestartPolicy; {
	case rp != corev1.RestartPolicyOnFailure && rp != corev1.RestartPolicyNever:
		errs = append(errs, field.NotSupported(tPath.Child("spec", "restartPolicy"), rp, []corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}))
	case rp == corev1.RestartPolicyOnFailure && spec.PodFailurePolicy != nil:
		errs = append(errs, field.Invalid(tPath.Child("spec", "restartPolicy"), rp, fmt.Sprintf("only %q is supported when podFailurePolicy is specified", corev1.RestartPolicyNever)))
	}
	return errs
}

func validateJobUpdate(job, old *batchv1.Job, specPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	n, o := &job.Spec, &old.Spec
	// An Indexed Job whose completions track its parallelism may be
	// scaled: that is how elastic Indexed Jobs grow and shrink.
	elastic := n.CompletionMode != nil && *n.CompletionMode == batchv1.IndexedCompletion &&
		ptrEq(n.Completions, n.Parallelism) && ptrEq(o.Completions, o.Parallelism) && n.Completions != nil
	if !elastic {
		errs = append(errs, validateImmutable(n.Completions, o.Completions, specPath.Child("completions"))...)
	}
	errs = append(errs, validateImmutable(n.Selector, o.Selector, specPath.Child("selector"))...)
	errs = append(errs, validateImmutable(n.CompletionMode, o.CompletionMode, specPath.Child("completionMode"))...)
	errs = append(errs, validateImmutable(n.PodFailurePolicy, o.PodFailurePolicy, specPath.Child("podFailurePolicy"))...)
	errs = append(errs, validateImmutable(n.BackoffLimitPerIndex, o.BackoffLimitPerIndex, specPath.Child("backoffLimitPerIndex"))...)
	errs = append(errs, validateImmutable(n.ManagedBy, o.ManagedBy, specPath.Child("managedBy"))...)
	errs = append(errs, validateImmutable(n.SuccessPolicy, o.SuccessPolicy, specPath.Child("successPolicy"))...)

	// A Job that was created suspended and never started may still be told
	// where to run (what queueing controllers do); otherwise its Pods must
	// all come from one template.
	tPath := specPath.Child("template")
	if o.Suspend != nil && *o.Suspend && old.Status.StartTime == nil {
		cur := n.Template.DeepCopy()
		cur.Labels, cur.Annotations = o.Template.Labels, o.Template.Annotations
		cur.Spec.NodeSelector = o.Template.Spec.NodeSelector
		cur.Spec.Tolerations = o.Template.Spec.Tolerations
		cur.Spec.Affinity = o.Template.Spec.Affinity
		cur.Spec.SchedulingGates = o.Template.Spec.SchedulingGates
		if !apiequality.Semantic.DeepEqual(*cur, o.Template) {
			errs = append(errs, field.Invalid(tPath, n.Template, fieldImmutableMsg))
		}
		return errs
	}
	return append(errs, validateImmutable(n.Template, o.Template, tPath)...)
}

func ptrEq[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func validateCronJob(cj, old *batchv1.CronJob) field.ErrorList {
	metaPath := field.NewPath("metadata")
	errs := validateMeta(&cj.ObjectMeta, oldMeta(old), true, nameIsDNSSubdomain, metaPath)
	if len(cj.Name) > maxCronJobNameLength {
		errs = append(errs, field.Invalid(metaPath.Child("name"), cj.Name, fmt.Sprintf("must be no more than %d characters", maxCronJobNameLength)))
	}
	specPath := field.NewPath("spec")
	spec := &cj.Spec
	if spec.Schedule == "" {
		errs = append(errs, field.Required(specPath.Child("schedule"), ""))
	} else {
		// Schedules that carried a time zone before the timeZone field
		// existed keep working; new ones must use the field.
		allowTZ := old != nil && strings.Contains(old.Spec.Schedule, "TZ")
		errs = append(errs, validateSchedule(spec.Schedule, allowTZ, spec.TimeZone, specPath.Child("schedule"))...)
	}
	if spec.StartingDeadlineSeconds != nil {
		errs = append(errs, validateNonnegative(*spec.StartingDeadlineSeconds, specPath.Child("startingDeadlineSeconds"))...)
	}
	if old == nil || !ptrEq(old.Spec.TimeZone, spec.TimeZone) {
		errs = append(errs, validateTimeZone(spec.TimeZone, specPath.Child("timeZone"))...)
	}
	switch spec.ConcurrencyPolicy {
	case batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent:
	case "":
		errs = append(errs, field.Required(specPath.Child("concurrencyPolicy"), ""))
	default:
		errs = append(errs, field.NotSupported(specPath.Child("concurrencyPolicy"), spec.ConcurrencyPolicy, []batchv1.ConcurrencyPolicy{batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent}))
	}
	if spec.SuccessfulJobsHistoryLimit != nil {
		errs = append(errs, validateNonnegative(int64(*spec.SuccessfulJobsHistoryLimit), specPath.Child("successfulJobsHistoryLimit"))...)
	}
	if spec.FailedJobsHistoryLimit != nil {
		errs = append(errs, validateNonnegative(int64(*spec.FailedJobsHistoryLimit), specPath.Child("failedJobsHistoryLimit"))...)
	}

	jtPath := specPath.Child("jobTemplate")
	jt := &spec.JobTemplate
	errs = append(errs, metavalidation.ValidateLabels(jt.Labels, jtPath.Child("metadata", "labels"))...)
	errs = append(errs, validateAnnotations(jt.Annotations, jtPath.Child("metadata", "annotations"))...)
	errs = append(errs, validateJobSpec(&jt.Spec, jtPath.Child("spec"))...)
	// Every Job the CronJob makes gets its own generated selector.
	if jt.Spec.Selector != nil {
		errs = append(errs, field.Invalid(jtPath.Child("spec", "selector"), jt.Spec.Selector, "`selector` will be auto-generated"))
	}
	if jt.Spec.ManualSelector != nil && *jt.Spec.ManualSelector {
		errs = append(errs, field.NotSupported(jtPath.Child("spec", "manualSelector"), jt.Spec.ManualSelector, []string{"nil", "false"}))
	}
	return errs
}

func validateSchedule(schedule string, allowTZ bool, timeZone *string, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if err := checkCronSchedule(schedule); err != nil {
		errs = append(errs, field.Invalid(fld, schedule, err.Error()))
	}
	switch {
	case allowTZ && strings.Contains(schedule, "TZ") && timeZone != nil:
		errs = append(errs, field.Invalid(fld, schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
	case !allowTZ && strings.Contains(schedule, "TZ"):
		errs = append(errs, field.Invalid(fld, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
	}
	return errs
}

var validTimeZoneChars = regexp.MustCompile(`^[A-Za-z\.\-_0-9+]{1,14}$`)

// validateTimeZone accepts IANA time zone names the server's tz database
// knows. "Local" is refused: it would mean the API server's zone, which
// nobody writing a manifest can see.
func validateTimeZone(tz *string, fld *field.Path) field.ErrorList {
	if tz == nil {
		return nil
	}
	if *tz == "" {
		return field.ErrorList{field.Invalid(fld, tz, "timeZone must be nil or non-empty string")}
	}
	for _, part := range strings.Split(*tz, "/") {
		if part == "." || part == ".." || strings.HasPrefix(part, "-") || !validTimeZoneChars.MatchString(part) {
			return field.ErrorList{field.Invalid(fld, tz, fmt.Sprintf("unknown time zone %s", *tz))}
		}
	}
	var errs field.ErrorList
	if strings.EqualFold(*tz, "Local") {
		errs = append(errs, field.Invalid(fld, tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"))
	}
	if _, err := time.LoadLocation(*tz); err != nil {
		errs = append(errs, field.Invalid(fld, tz, err.Error()))
	}
	return errs
}

package validation

import (
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"weir.dev/weir/controlplane/defaults"
)

// TestValidateEmptyObjects feeds every kind its zero value, raw and
// defaulted, on create and on update: the API server passes whatever a
// client sent, so Validate must report a missing name rather than panic on
// nil fields.
func TestValidateEmptyObjects(t *testing.T) {
	tests := []runtime.Object{
		&corev1.Pod{}, &corev1.Service{}, &corev1.Namespace{}, &corev1.Node{},
		&corev1.Endpoints{}, &corev1.ConfigMap{}, &corev1.Secret{}, &corev1.Event{},
		&discoveryv1.EndpointSlice{}, &coordinationv1.Lease{},
		&appsv1.Deployment{}, &appsv1.ReplicaSet{}, &appsv1.DaemonSet{}, &appsv1.StatefulSet{}, &appsv1.ControllerRevision{},
		&batchv1.Job{}, &batchv1.CronJob{}, &autoscalingv2.HorizontalPodAutoscaler{}, &certificatesv1.CertificateSigningRequest{},
	}
	if len(tests) == 0 {
		t.Fatal("empty test table")
	}
	for _, obj := range tests {
		name := runtimeTypeName(obj)
		defaulted := obj.DeepCopyObject()
		defaults.Default(defaulted)
		for _, c := range []struct {
			name     string
			obj, old runtime.Object
		}{
			{name + "/raw/create", obj, nil},
			{name + "/defaulted/create", defaulted, nil},
			{name + "/raw/update", obj, obj.DeepCopyObject()},
			{name + "/defaulted/update", defaulted, defaulted.DeepCopyObject()},
		} {
			t.Run(c.name, func(t *testing.T) {
				errs := Validate(c.obj, c.old)
				if !hasError(errs, "metadata.name", field.ErrorTypeRequired) {
					t.Errorf("Validate() = %v, want metadata.name required", errs.ToAggregate())
				}
			})
		}
	}
}

func hasError(errs field.ErrorList, path string, typ field.ErrorType) bool {
	for _, e := range errs {
		if e.Field == path && e.Type == typ {
			return true
		}
	}
	return false
}

func runtimeTypeName(obj runtime.Object) string {
	return reflect.TypeOf(obj).Elem().Name()
}

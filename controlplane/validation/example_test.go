package validation_test

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"weir.dev/weir/controlplane/defaults"
	"weir.dev/weir/controlplane/validation"
)

func ExampleValidate() {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{Port: 70000, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	defaults.Default(svc)
	if errs := validation.Validate(svc, nil); len(errs) > 0 {
		fmt.Println(errs.ToAggregate())
	}
	// Output: spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive
}

package defaults_test

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/controlplane/defaults"
)

func ExampleDefault() {
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	defaults.Default(svc)
	fmt.Println(svc.Spec.Type, svc.Spec.SessionAffinity, svc.Spec.Ports[0].Protocol, svc.Spec.Ports[0].TargetPort.String(), svc.Spec.IPFamilies)
	// Output: ClusterIP None TCP 80 [IPv4]
}

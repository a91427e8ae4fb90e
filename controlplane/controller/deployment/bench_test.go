package deployment_test

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weir.dev/weir/test/cluster"
)

// BenchmarkDeployment100 measures the control plane alone (in-process
// server, embedded etcd, the benchmark playing the agents, so a pod is
// ready as soon as it is seen): a 100-replica Deployment from create to
// every replica available, then a full rolling update (25%/25%) to a new
// image. It reports both in milliseconds per operation.
func BenchmarkDeployment100(b *testing.B) {
	s := cluster.Start(b, cluster.WithLoops(loops()))
	c := s.Client(b)
	ns := namespace(b, c, "bench")
	startAgent(b, c, ns)
	var apply, update time.Duration
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("web-%d", i)
		labels := map[string]string{"app": name}
		start := time.Now()
		if _, err := c.AppsV1().Deployments(ns).Create(b.Context(), &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{}},
			Spec: appsv1.DeploymentSpec{
				Replicas: new(int32(100)),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "weir.local/echo:v1"}}},
				},
			},
		}, metav1.CreateOptions{}); err != nil {
			b.Fatalf("create: %v", err)
		}
		waitComplete(b, c, ns, name, "weir.local/echo:v1")
		apply += time.Since(start)
		start = time.Now()
		edit(b, c, ns, name, setImage("weir.local/echo:v2", "v2"))
		waitComplete(b, c, ns, name, "weir.local/echo:v2")
		update += time.Since(start)
		if err := c.AppsV1().Deployments(ns).Delete(b.Context(), name, metav1.DeleteOptions{}); err != nil {
			b.Fatalf("delete: %v", err)
		}
	}
	b.ReportMetric(float64(apply.Milliseconds())/float64(b.N), "apply-to-ready-ms/op")
	b.ReportMetric(float64(update.Milliseconds())/float64(b.N), "rolling-update-ms/op")
}

package namespace_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"weir.dev/weir/test/cluster"
)

// wait is the deadline of every wait on the controller.
const wait = 30 * time.Second

const hold = "test.weir.dev/hold"

// TestNamespaceDeletion runs the namespace controller (and the garbage
// collector) in a real weir server and deletes namespaces with content.
func TestNamespaceDeletion(t *testing.T) {
	s := cluster.Start(t)
	c := s.Client(t)
	tests := []struct {
		name string
		// fill creates the namespace's content.
		fill func(t *testing.T, c kubernetes.Interface, ns string)
		// whileTerminating runs once the namespace is marked; it may
		// check what the controller reports and release what holds it.
		whileTerminating func(t *testing.T, c kubernetes.Interface, ns string)
	}{
		{
			name: "empty",
			fill: func(*testing.T, kubernetes.Interface, string) {},
		},
		{
			name: "configmap service deployment and an unbound pod",
			fill: func(t *testing.T, c kubernetes.Interface, ns string) {
				create(t, "configmap", func(ctx context.Context) error {
					return errOf(c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}))
				})
				create(t, "secret", func(ctx context.Context) error {
					return errOf(c.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}, StringData: map[string]string{"k": "v"}}, metav1.CreateOptions{}))
				})
				create(t, "service", func(ctx context.Context) error {
					return errOf(c.CoreV1().Services(ns).Create(ctx, &corev1.Service{
						ObjectMeta: metav1.ObjectMeta{Name: "web"},
						Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
							Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
					}, metav1.CreateOptions{}))
				})
				create(t, "deployment", func(ctx context.Context) error {
					return errOf(c.AppsV1().Deployments(ns).Create(ctx, deployment("web"), metav1.CreateOptions{}))
				})
				create(t, "pod", func(ctx context.Context) error {
					return errOf(c.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
						ObjectMeta: metav1.ObjectMeta{Name: "loose", Labels: map[string]string{"app": "web"}},
						Spec:       podSpec(),
					}, metav1.CreateOptions{}))
				})
			},
		},
		{
			name: "content with a finalizer holds the namespace",
			fill: func(t *testing.T, c kubernetes.Interface, ns string) {
				create(t, "held configmap", func(ctx context.Context) error {
					return errOf(c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{hold}}}, metav1.CreateOptions{}))
				})
				t.Cleanup(func() { release(t, c, ns, "held") })
			},
			whileTerminating: func(t *testing.T, c kubernetes.Interface, ns string) {
				cluster.Eventually(t, wait, "conditions name what remains", func() (bool, error) {
					n, err := c.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
					if err != nil {
						return false, err
					}
					remaining := condition(n, corev1.NamespaceContentRemaining)
					finalizers := condition(n, corev1.NamespaceFinalizersRemaining)
					return remaining.Status == corev1.ConditionTrue && strings.Contains(remaining.Message, "configmaps has 1") &&
						finalizers.Status == corev1.ConditionTrue && strings.Contains(finalizers.Message, hold), nil
				})
				cm, err := c.CoreV1().ConfigMaps(ns).Get(t.Context(), "held", metav1.GetOptions{})
				if err != nil || cm.DeletionTimestamp == nil {
					t.Fatalf("held configmap = %v, %v; want it terminating", cm, err)
				}
				n, err := c.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
				if err != nil || !slices.Contains(n.Spec.Finalizers, corev1.FinalizerKubernetes) {
					t.Fatalf("namespace finalized while content remains: %v, %v", n, err)
				}
				release(t, c, ns, "held")
			},
		},
		{
			name: "a pod a node runs holds the namespace until its agent lets go",
			fill: func(t *testing.T, c kubernetes.Interface, ns string) {
				spec := podSpec()
				spec.NodeName = "node-" + ns
				create(t, "bound pod", func(ctx context.Context) error {
					return errOf(c.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "running"}, Spec: spec}, metav1.CreateOptions{}))
				})
			},
			whileTerminating: func(t *testing.T, c kubernetes.Interface, ns string) {
				cluster.Eventually(t, wait, "pod terminating gracefully", func() (bool, error) {
					p, err := c.CoreV1().Pods(ns).Get(t.Context(), "running", metav1.GetOptions{})
					return err == nil && p.DeletionTimestamp != nil, err
				})
				n, err := c.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
				if err != nil || !slices.Contains(n.Spec.Finalizers, corev1.FinalizerKubernetes) {
					t.Fatalf("namespace finalized while a pod runs: %v, %v", n, err)
				}
				// What the node agent does once the containers have stopped.
				zero := int64(0)
				if err := c.CoreV1().Pods(ns).Delete(t.Context(), "running", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
					t.Fatalf("final pod delete: %v", err)
				}
			},
		},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := fmt.Sprintf("ns-%d", i)
			if _, err := c.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatalf("create namespace: %v", err)
			}
			t.Cleanup(func() { _ = c.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
			tc.fill(t, c, ns)

			if err := c.CoreV1().Namespaces().Delete(t.Context(), ns, metav1.DeleteOptions{}); err != nil {
				t.Fatalf("delete namespace: %v", err)
			}
			if tc.whileTerminating != nil {
				n, err := c.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
				if err != nil || n.Status.Phase != corev1.NamespaceTerminating {
					t.Fatalf("namespace after delete = %v, %v; want it Terminating", n, err)
				}
				tc.whileTerminating(t, c, ns)
			}
			cluster.Eventually(t, wait, "namespace gone", func() (bool, error) {
				n, err := c.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return true, nil
				}
				if err != nil {
					return false, err
				}
				return false, fmt.Errorf("namespace %s is %s with spec.finalizers %v, metadata.finalizers %v, conditions %v",
					ns, n.Status.Phase, n.Spec.Finalizers, n.Finalizers, n.Status.Conditions)
			})
			// Nothing may outlive its namespace.
			left := map[string]int{}
			for kind, list := range map[string]func(context.Context) (runtime.Object, error){
				"configmaps":  lister(c.CoreV1().ConfigMaps(ns).List),
				"secrets":     lister(c.CoreV1().Secrets(ns).List),
				"services":    lister(c.CoreV1().Services(ns).List),
				"pods":        lister(c.CoreV1().Pods(ns).List),
				"deployments": lister(c.AppsV1().Deployments(ns).List),
				"replicasets": lister(c.AppsV1().ReplicaSets(ns).List),
			} {
				l, err := list(t.Context())
				if err != nil {
					t.Errorf("list %s in %s: %v", kind, ns, err)
					continue
				}
				if n := meta.LenList(l); n > 0 {
					left[kind] = n
				}
			}
			if len(left) > 0 {
				t.Errorf("objects outlived namespace %s: %v", ns, left)
			}
		})
	}
}

func errOf[T any](_ T, err error) error { return err }

// lister adapts a typed List to one signature.
func lister[L runtime.Object](list func(context.Context, metav1.ListOptions) (L, error)) func(context.Context) (runtime.Object, error) {
	return func(ctx context.Context) (runtime.Object, error) { return list(ctx, metav1.ListOptions{}) }
}

func create(t *testing.T, what string, f func(context.Context) error) {
	t.Helper()
	if err := f(t.Context()); err != nil {
		t.Fatalf("create %s: %v", what, err)
	}
}

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "weir.local/echo"}}}
}

func deployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec()},
		},
	}
}

func condition(n *corev1.Namespace, typ corev1.NamespaceConditionType) corev1.NamespaceCondition {
	for _, c := range n.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return corev1.NamespaceCondition{}
}

// release removes the hold finalizer from a ConfigMap, if it still exists.
func release(t *testing.T, c kubernetes.Interface, ns, name string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := c.CoreV1().ConfigMaps(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cm.Finalizers = slices.DeleteFunc(cm.Finalizers, func(f string) bool { return f == hold })
		_, err = c.CoreV1().ConfigMaps(ns).Update(context.Background(), cm, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("release configmap %s/%s: %v", ns, name, err)
	}
}

package gc_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"weir.dev/weir/controlplane/controller/gc"
	"weir.dev/weir/test/cluster"
)

// wait is the deadline of every wait on the collector.
const wait = 30 * time.Second

const hold = "test.weir.dev/hold"

// TestGarbageCollector runs the collector in a real weir server (the
// server's default loops) and checks each propagation policy end to end.
func TestGarbageCollector(t *testing.T) {
	s := cluster.Start(t)
	c := s.Client(t)
	tests := []struct {
		name string
		run  func(t *testing.T, c kubernetes.Interface, ns string)
	}{
		{name: "background deletes the dependent", run: func(t *testing.T, c kubernetes.Interface, ns string) {
			d := deployment(t, c, ns, "web")
			configMap(t, c, ns, "cfg", nil, ownerOf(d, false))
			deleteWith(t, c.AppsV1().Deployments(ns).Delete, "web", metav1.DeletePropagationBackground)
			waitGone(t, "configmap cfg", getConfigMap(c, ns, "cfg"))
		}},
		{name: "foreground keeps the owner until the dependent is gone", run: func(t *testing.T, c kubernetes.Interface, ns string) {
			d := deployment(t, c, ns, "web")
			// The dependent holds a finalizer of its own, so the owner's
			// wait can be seen.
			configMap(t, c, ns, "cfg", []string{hold}, ownerOf(d, true))
			deleteWith(t, c.AppsV1().Deployments(ns).Delete, "web", metav1.DeletePropagationForeground)

			cluster.Eventually(t, wait, "dependent deleted in the foreground", func() (bool, error) {
				cm, err := c.CoreV1().ConfigMaps(ns).Get(t.Context(), "cfg", metav1.GetOptions{})
				return err == nil && cm.DeletionTimestamp != nil, err
			})
			got, err := c.AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
			if err != nil {
				t.Fatalf("owner gone while its dependent remains: %v", err)
			}
			if got.DeletionTimestamp == nil || !slices.Contains(got.Finalizers, gc.FinalizerForeground) {
				t.Fatalf("owner = deletionTimestamp %v finalizers %v; want it marked and waiting", got.DeletionTimestamp, got.Finalizers)
			}

			dropFinalizer(t, c, ns, "cfg", hold)
			waitGone(t, "deployment web", getDeployment(c, ns, "web"))
			if err := getConfigMap(c, ns, "cfg")(t.Context()); !apierrors.IsNotFound(err) {
				t.Fatalf("owner went before its dependent: get configmap = %v", err)
			}
		}},
		{name: "foreground cascades through every level", run: func(t *testing.T, c kubernetes.Interface, ns string) {
			root := configMap(t, c, ns, "root", nil)
			mid := configMap(t, c, ns, "mid", nil, ownerOf(root, true))
			configMap(t, c, ns, "leaf", []string{hold}, ownerOf(mid, true))
			deleteWith(t, c.CoreV1().ConfigMaps(ns).Delete, "root", metav1.DeletePropagationForeground)

			cluster.Eventually(t, wait, "the deletion reached the leaf", func() (bool, error) {
				cm, err := c.CoreV1().ConfigMaps(ns).Get(t.Context(), "leaf", metav1.GetOptions{})
				return err == nil && cm.DeletionTimestamp != nil, err
			})
			for _, n := range []string{"root", "mid"} {
				cm, err := c.CoreV1().ConfigMaps(ns).Get(t.Context(), n, metav1.GetOptions{})
				if err != nil {
					t.Fatalf("%s gone while the leaf remains: %v", n, err)
				}
				if cm.DeletionTimestamp == nil || !slices.Contains(cm.Finalizers, gc.FinalizerForeground) {
					t.Fatalf("%s = deletionTimestamp %v finalizers %v; want it marked and waiting", n, cm.DeletionTimestamp, cm.Finalizers)
				}
			}

			dropFinalizer(t, c, ns, "leaf", hold)
			waitGone(t, "configmap root", getConfigMap(c, ns, "root"))
			for _, n := range []string{"mid", "leaf"} {
				if err := getConfigMap(c, ns, n)(t.Context()); !apierrors.IsNotFound(err) {
					t.Errorf("root went before %s: get = %v", n, err)
				}
			}
		}},
		{name: "orphan keeps the dependent and drops the reference", run: func(t *testing.T, c kubernetes.Interface, ns string) {
			d := deployment(t, c, ns, "web")
			other := configMap(t, c, ns, "other", nil)
			configMap(t, c, ns, "cfg", nil, ownerOf(d, true), ownerOf(other, false))
			deleteWith(t, c.AppsV1().Deployments(ns).Delete, "web", metav1.DeletePropagationOrphan)
			waitGone(t, "deployment web", getDeployment(c, ns, "web"))
			cm, err := c.CoreV1().ConfigMaps(ns).Get(t.Context(), "cfg", metav1.GetOptions{})
			if err != nil {
				t.Fatalf("orphaned dependent: %v", err)
			}
			if got := ownerUIDs(cm.OwnerReferences); !slices.Equal(got, []types.UID{other.UID}) {
				t.Fatalf("orphaned dependent's owners = %v; want only %v", got, other.UID)
			}
		}},
		{name: "a dependent with a live owner stays", run: func(t *testing.T, c kubernetes.Interface, ns string) {
			a := deployment(t, c, ns, "a")
			b := deployment(t, c, ns, "b")
			configMap(t, c, ns, "cfg", nil, ownerOf(a, false), ownerOf(b, false))
			deleteWith(t, c.AppsV1().Deployments(ns).Delete, "a", metav1.DeletePropagationBackground)
			// The collector drops the reference to the absent owner and
			// keeps the object: that is the sign it has decided.
			cluster.Eventually(t, wait, "reference to the deleted owner dropped", func() (bool, error) {
				cm, err := c.CoreV1().ConfigMaps(ns).Get(t.Context(), "cfg", metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				return slices.Equal(ownerUIDs(cm.OwnerReferences), []types.UID{b.UID}), nil
			})
			deleteWith(t, c.AppsV1().Deployments(ns).Delete, "b", metav1.DeletePropagationBackground)
			waitGone(t, "configmap cfg", getConfigMap(c, ns, "cfg"))
		}},
		{name: "an owner that never existed", run: func(t *testing.T, c kubernetes.Interface, ns string) {
			configMap(t, c, ns, "cfg", nil, metav1.OwnerReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "ghost", UID: "00000000-0000-0000-0000-000000000001"})
			waitGone(t, "configmap cfg", getConfigMap(c, ns, "cfg"))
		}},
		{name: "an owner of the same name but another UID", run: func(t *testing.T, c kubernetes.Interface, ns string) {
			deployment(t, c, ns, "web")
			configMap(t, c, ns, "cfg", nil, metav1.OwnerReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "00000000-0000-0000-0000-000000000002"})
			waitGone(t, "configmap cfg", getConfigMap(c, ns, "cfg"))
			if _, err := c.AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{}); err != nil {
				t.Fatalf("the unrelated deployment: %v", err)
			}
		}},
		{name: "a cluster-scoped owner", run: func(t *testing.T, c kubernetes.Interface, ns string) {
			node, err := c.CoreV1().Nodes().Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: ns + "-node"}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("create node: %v", err)
			}
			t.Cleanup(func() { _ = c.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{}) })
			configMap(t, c, ns, "cfg", nil, metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID})
			deleteWith(t, c.CoreV1().Nodes().Delete, node.Name, metav1.DeletePropagationBackground)
			waitGone(t, "configmap cfg", getConfigMap(c, ns, "cfg"))
		}},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, c, namespace(t, c, fmt.Sprintf("gc-%d", i)))
		})
	}
}

// namespace creates a namespace for one scenario and deletes it after.
func namespace(t *testing.T, c kubernetes.Interface, name string) string {
	t.Helper()
	if _, err := c.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() { _ = c.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	return name
}

func deployment(t *testing.T, c kubernetes.Interface, ns, name string) *appsv1.Deployment {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "weir.local/echo"}}},
			},
		},
	}
	out, err := c.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create deployment %s/%s: %v", ns, name, err)
	}
	return out
}

func configMap(t *testing.T, c kubernetes.Interface, ns, name string, finalizers []string, owners ...metav1.OwnerReference) *corev1.ConfigMap {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: finalizers, OwnerReferences: owners}}
	out, err := c.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create configmap %s/%s: %v", ns, name, err)
	}
	if len(finalizers) > 0 {
		t.Cleanup(func() { dropFinalizer(t, c, ns, name, finalizers...) })
	}
	return out
}

// ownerOf is a reference to obj, a Deployment or a ConfigMap.
func ownerOf(obj metav1.Object, block bool) metav1.OwnerReference {
	ref := metav1.OwnerReference{Name: obj.GetName(), UID: obj.GetUID(), BlockOwnerDeletion: &block}
	switch obj.(type) {
	case *appsv1.Deployment:
		ref.APIVersion, ref.Kind = "apps/v1", "Deployment"
	case *corev1.ConfigMap:
		ref.APIVersion, ref.Kind = "v1", "ConfigMap"
	default:
		panic(fmt.Sprintf("ownerOf %T", obj))
	}
	return ref
}

func ownerUIDs(refs []metav1.OwnerReference) []types.UID {
	var out []types.UID
	for _, r := range refs {
		out = append(out, r.UID)
	}
	return out
}

func deleteWith(t *testing.T, del func(context.Context, string, metav1.DeleteOptions) error, name string, p metav1.DeletionPropagation) {
	t.Helper()
	if err := del(t.Context(), name, metav1.DeleteOptions{PropagationPolicy: &p}); err != nil {
		t.Fatalf("delete %s (%s): %v", name, p, err)
	}
}

// dropFinalizer removes finalizers from a ConfigMap, if it still exists.
func dropFinalizer(t *testing.T, c kubernetes.Interface, ns, name string, finalizers ...string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := c.CoreV1().ConfigMaps(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cm.Finalizers = slices.DeleteFunc(cm.Finalizers, func(f string) bool { return slices.Contains(finalizers, f) })
		_, err = c.CoreV1().ConfigMaps(ns).Update(context.Background(), cm, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("drop finalizers %v from configmap %s/%s: %v", finalizers, ns, name, err)
	}
}

func getErr[T any](_ T, err error) error { return err }

func getConfigMap(c kubernetes.Interface, ns, name string) func(context.Context) error {
	return func(ctx context.Context) error {
		return getErr(c.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{}))
	}
}

func getDeployment(c kubernetes.Interface, ns, name string) func(context.Context) error {
	return func(ctx context.Context) error {
		return getErr(c.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}))
	}
}

// waitGone waits until get answers 404.
func waitGone(t *testing.T, what string, get func(context.Context) error) {
	t.Helper()
	cluster.Eventually(t, wait, what+" gone", func() (bool, error) {
		err := get(t.Context())
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err == nil {
			return false, fmt.Errorf("%s still there", what)
		}
		return false, err
	})
}

package clientgo

import (
	"context"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"weir.dev/weir/test/cluster"
)

// defaultClient is a clientset with client-go's defaults: no ContentType,
// so request bodies are protobuf.
func defaultClient(t *testing.T, s *cluster.Server) kubernetes.Interface {
	t.Helper()
	cfg := s.RESTConfig("")
	if cfg.ContentType != "" {
		t.Fatalf("content type %q: the test must use client-go's default", cfg.ContentType)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// typed is the list/watch/create/update/delete surface shared by the
// typed clients under test.
type typed struct {
	name   string
	create func(ctx context.Context) (runtime.Object, error)
	update func(ctx context.Context) error
	list   func(ctx context.Context) (int, string, error)
	watch  func(ctx context.Context, rv string) (watch.Interface, error)
	delete func(ctx context.Context) error
	get    func(ctx context.Context) error
}

func TestTypedClientsDefaultSettings(t *testing.T) {
	s := cluster.Start(t, cluster.WithLoops(nil))
	c := defaultClient(t, s)
	const ns = "default"
	replicas := int32(2)
	labels := map[string]string{"app": "cg"}
	kinds := []typed{
		{
			name: "pods",
			create: func(ctx context.Context) (runtime.Object, error) {
				return c.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "cg", Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{})
			},
			update: func(ctx context.Context) error {
				p, err := c.CoreV1().Pods(ns).Get(ctx, "cg", metav1.GetOptions{})
				if err != nil {
					return err
				}
				p.Labels["changed"] = "yes"
				_, err = c.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{})
				return err
			},
			list: func(ctx context.Context) (int, string, error) {
				l, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=cg"})
				if err != nil {
					return 0, "", err
				}
				return len(l.Items), l.ResourceVersion, nil
			},
			watch: func(ctx context.Context, rv string) (watch.Interface, error) {
				return c.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, LabelSelector: "app=cg"})
			},
			delete: func(ctx context.Context) error {
				zero := int64(0)
				return c.CoreV1().Pods(ns).Delete(ctx, "cg", metav1.DeleteOptions{GracePeriodSeconds: &zero})
			},
			get: func(ctx context.Context) error {
				_, err := c.CoreV1().Pods(ns).Get(ctx, "cg", metav1.GetOptions{})
				return err
			},
		},
		{
			name: "services",
			create: func(ctx context.Context) (runtime.Object, error) {
				return c.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "cg", Labels: labels},
					Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}, metav1.CreateOptions{})
			},
			update: func(ctx context.Context) error {
				sv, err := c.CoreV1().Services(ns).Get(ctx, "cg", metav1.GetOptions{})
				if err != nil {
					return err
				}
				sv.Spec.Ports[0].Port = 81
				_, err = c.CoreV1().Services(ns).Update(ctx, sv, metav1.UpdateOptions{})
				return err
			},
			list: func(ctx context.Context) (int, string, error) {
				l, err := c.CoreV1().Services(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=cg"})
				if err != nil {
					return 0, "", err
				}
				return len(l.Items), l.ResourceVersion, nil
			},
			watch: func(ctx context.Context, rv string) (watch.Interface, error) {
				return c.CoreV1().Services(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, LabelSelector: "app=cg"})
			},
			delete: func(ctx context.Context) error {
				return c.CoreV1().Services(ns).Delete(ctx, "cg", metav1.DeleteOptions{})
			},
			get: func(ctx context.Context) error {
				_, err := c.CoreV1().Services(ns).Get(ctx, "cg", metav1.GetOptions{})
				return err
			},
		},
		{
			name: "deployments",
			create: func(ctx context.Context) (runtime.Object, error) {
				return c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "cg", Labels: labels},
					Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
						Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
							Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}, metav1.CreateOptions{})
			},
			update: func(ctx context.Context) error {
				d, err := c.AppsV1().Deployments(ns).Get(ctx, "cg", metav1.GetOptions{})
				if err != nil {
					return err
				}
				d.Spec.Template.Spec.Containers[0].Image = "busybox:2"
				_, err = c.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
				return err
			},
			list: func(ctx context.Context) (int, string, error) {
				l, err := c.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=cg"})
				if err != nil {
					return 0, "", err
				}
				return len(l.Items), l.ResourceVersion, nil
			},
			watch: func(ctx context.Context, rv string) (watch.Interface, error) {
				return c.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, LabelSelector: "app=cg"})
			},
			delete: func(ctx context.Context) error {
				return c.AppsV1().Deployments(ns).Delete(ctx, "cg", metav1.DeleteOptions{})
			},
			get: func(ctx context.Context) error {
				_, err := c.AppsV1().Deployments(ns).Get(ctx, "cg", metav1.GetOptions{})
				return err
			},
		},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			ctx := t.Context()
			n, rv, err := k.list(ctx)
			if err != nil || n != 0 {
				t.Fatalf("list before create: %d %v", n, err)
			}
			w, err := k.watch(ctx, rv)
			if err != nil {
				t.Fatalf("watch: %v", err)
			}
			defer w.Stop()
			if _, err := k.create(ctx); err != nil {
				t.Fatalf("create (protobuf body): %v", err)
			}
			if err := k.update(ctx); err != nil {
				t.Fatalf("update (protobuf body): %v", err)
			}
			if n, _, err := k.list(ctx); err != nil || n != 1 {
				t.Fatalf("list after create: %d %v", n, err)
			}
			if err := k.delete(ctx); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if err := k.get(ctx); !apierrors.IsNotFound(err) {
				t.Fatalf("get after delete: %v", err)
			}
			var got []watch.EventType
			timeout := time.After(15 * time.Second)
			for len(got) < 3 {
				select {
				case ev, ok := <-w.ResultChan():
					if !ok {
						t.Fatalf("watch closed after %v", got)
					}
					got = append(got, ev.Type)
				case <-timeout:
					t.Fatalf("watch events %v, want ADDED MODIFIED DELETED", got)
				}
			}
			if got[0] != watch.Added || got[1] != watch.Modified || got[2] != watch.Deleted {
				t.Fatalf("watch events %v, want ADDED MODIFIED DELETED", got)
			}
		})
	}
}

// TestSharedInformer: a shared informer factory with client-go's defaults
// (watch-list first) syncs and then sees adds, updates and deletes.
func TestSharedInformer(t *testing.T) {
	s := cluster.Start(t, cluster.WithLoops(nil))
	c := defaultClient(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if _, err := c.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "before"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f := informers.NewSharedInformerFactory(c, 0)
	inf := f.Core().V1().Services().Informer()
	var mu sync.Mutex
	seen := map[string]int{}
	record := func(what string) {
		mu.Lock()
		seen[what]++
		mu.Unlock()
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { record("add/" + o.(*corev1.Service).Name) },
		UpdateFunc: func(_, o any) { record("update/" + o.(*corev1.Service).Name) },
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			record("delete/" + o.(*corev1.Service).Name)
		},
	}); err != nil {
		t.Fatal(err)
	}
	f.Start(ctx.Done())
	syncCtx, syncCancel := context.WithTimeout(ctx, 20*time.Second)
	defer syncCancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		t.Fatal("the informer did not sync within 20 s")
	}
	sv, err := c.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "after"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sv.Labels = map[string]string{"x": "y"}
	if _, err := c.CoreV1().Services("default").Update(ctx, sv, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.CoreV1().Services("default").Delete(ctx, "after", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 15*time.Second, "informer sees the changes", func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return seen["add/before"] == 1 && seen["add/after"] == 1 && seen["update/after"] >= 1 && seen["delete/after"] == 1, nil
	})
	if _, ok, _ := inf.GetStore().GetByKey("default/before"); !ok {
		t.Error("the informer's store lacks default/before")
	}
}

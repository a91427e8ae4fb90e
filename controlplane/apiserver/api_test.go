package apiserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"weir.dev/weir/test/cluster"
	"weir.dev/weir/test/etcdproc"
)

// backends runs f against a server on embedded etcd and one on a real
// external etcd process.
func backends(t *testing.T, f func(t *testing.T, s *cluster.Server)) {
	// Without the scheduler: these tests count every write to their pods.
	loops := cluster.WithLoops(cluster.APILoops())
	t.Run("embedded-etcd", func(t *testing.T) { f(t, cluster.Start(t, loops)) })
	t.Run("external-etcd", func(t *testing.T) {
		e := etcdproc.Start(t)
		f(t, cluster.Start(t, cluster.WithEtcd(e.Endpoints()), loops))
	})
}

func pod(name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "weir.local/echo"}}},
	}
}

func names(pods []corev1.Pod) string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return strings.Join(out, ",")
}

func TestCRUDSelectorsConflictsAndWatch(t *testing.T) {
	backends(t, func(t *testing.T, s *cluster.Server) {
		ctx := t.Context()
		c := s.Client(t)
		pods := c.CoreV1().Pods("default")

		created := map[string]*corev1.Pod{}
		for _, p := range []*corev1.Pod{
			pod("web-1", map[string]string{"app": "web", "tier": "front"}),
			pod("web-2", map[string]string{"app": "web", "tier": "back"}),
			pod("db-1", map[string]string{"app": "db"}),
		} {
			out, err := pods.Create(ctx, p, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("create %s: %v", p.Name, err)
			}
			created[p.Name] = out
		}
		if _, err := pods.Create(ctx, pod("web-1", nil), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
			t.Fatalf("duplicate create: got %v, want AlreadyExists", err)
		}

		t.Run("label selectors", func(t *testing.T) {
			for _, tc := range []struct{ sel, want string }{
				{"app=web", "web-1,web-2"},
				{"app!=web", "db-1"},
				{"app in (db,web),tier", "web-1,web-2"},
				{"tier notin (front)", "db-1,web-2"},
				{"!tier", "db-1"},
			} {
				l, err := pods.List(ctx, metav1.ListOptions{LabelSelector: tc.sel})
				if err != nil {
					t.Fatalf("%s: %v", tc.sel, err)
				}
				if got := names(l.Items); got != tc.want {
					t.Errorf("labelSelector %q: got %s, want %s", tc.sel, got, tc.want)
				}
			}
		})

		t.Run("field selectors", func(t *testing.T) {
			bind := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "db-1"}, Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}
			if err := pods.Bind(ctx, bind, metav1.CreateOptions{}); err != nil {
				t.Fatalf("bind: %v", err)
			}
			for _, tc := range []struct{ sel, want string }{
				{"spec.nodeName=n1", "db-1"},
				{"spec.nodeName!=n1", "web-1,web-2"},
				{"metadata.name=web-2", "web-2"},
				{"status.phase=Pending,metadata.name!=web-1", "db-1,web-2"},
			} {
				l, err := pods.List(ctx, metav1.ListOptions{FieldSelector: tc.sel})
				if err != nil {
					t.Fatalf("%s: %v", tc.sel, err)
				}
				if got := names(l.Items); got != tc.want {
					t.Errorf("fieldSelector %q: got %s, want %s", tc.sel, got, tc.want)
				}
			}
			if _, err := pods.List(ctx, metav1.ListOptions{FieldSelector: "spec.bogus=1"}); !apierrors.IsBadRequest(err) {
				t.Errorf("unsupported field label: got %v, want BadRequest", err)
			}
		})

		t.Run("stale update conflicts", func(t *testing.T) {
			stale := created["web-1"].DeepCopy()
			fresh := stale.DeepCopy()
			fresh.Labels["v"] = "1"
			if _, err := pods.Update(ctx, fresh, metav1.UpdateOptions{}); err != nil {
				t.Fatalf("first update: %v", err)
			}
			stale.Labels["v"] = "2"
			_, err := pods.Update(ctx, stale, metav1.UpdateOptions{})
			if !apierrors.IsConflict(err) {
				t.Fatalf("stale update: got %v, want Conflict", err)
			}
			got, _ := pods.Get(ctx, "web-1", metav1.GetOptions{})
			if got.Labels["v"] != "1" {
				t.Fatalf("stale update was written: label v=%q", got.Labels["v"])
			}
		})

		t.Run("watch resumes from a revision without a gap", func(t *testing.T) {
			l, err := pods.List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			from := l.ResourceVersion
			// Changes made while nobody watches ...
			for i := range 5 {
				if _, err := pods.Create(ctx, pod(fmt.Sprintf("gap-%d", i), nil), metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if err := pods.Delete(ctx, "gap-0", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			// ... all arrive, in order, to a watch resumed from the list.
			w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: from})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			want := []string{"ADDED gap-0", "ADDED gap-1", "ADDED gap-2", "ADDED gap-3", "ADDED gap-4", "DELETED gap-0"}
			last := 0
			for i, x := range want {
				select {
				case ev := <-w.ResultChan():
					p := ev.Object.(*corev1.Pod)
					if got := string(ev.Type) + " " + p.Name; got != x {
						t.Fatalf("event %d: got %s, want %s", i, got, x)
					}
					rv, _ := strconv.Atoi(p.ResourceVersion)
					if rv <= last {
						t.Fatalf("resourceVersion went backwards: %d after %d", rv, last)
					}
					last = rv
				case <-time.After(20 * time.Second):
					t.Fatalf("event %d (%s) did not arrive", i, x)
				}
			}
		})

		t.Run("a compacted revision is 410 Gone", func(t *testing.T) {
			l, _ := pods.List(ctx, metav1.ListOptions{})
			old := l.ResourceVersion
			if _, err := pods.Create(ctx, pod("after-list", nil), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			rev, err := s.Store.Revision(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Store.Compact(ctx, rev); err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/v1/namespaces/default/pods?watch=1&resourceVersion="+old, nil)
			req.Header.Set("Authorization", "Bearer "+s.AdminToken)
			resp, err := s.HTTPClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var st metav1.Status
			_ = json.NewDecoder(resp.Body).Decode(&st)
			if resp.StatusCode != http.StatusGone || st.Reason != metav1.StatusReasonExpired {
				t.Fatalf("watch from compacted %s: got %d %q, want 410 Expired", old, resp.StatusCode, st.Reason)
			}
			// client-go sees it as "resource expired", which makes informers re-list.
			_, err = pods.Watch(ctx, metav1.ListOptions{ResourceVersion: old})
			if err == nil || !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
				t.Fatalf("client-go watch from compacted revision: got %v, want expired", err)
			}
		})

		t.Run("delete, then get is 404", func(t *testing.T) {
			if err := pods.Delete(ctx, "web-2", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			_, err := pods.Get(ctx, "web-2", metav1.GetOptions{})
			if !apierrors.IsNotFound(err) || err.Error() != `pods "web-2" not found` {
				t.Fatalf("get deleted: got %v", err)
			}
		})
	})
}

// A bound pod is deleted gracefully: it stays with a deletionTimestamp until
// a delete with grace 0 (its agent's) removes it.
func TestGracefulPodDelete(t *testing.T) {
	s := startAPI(t)
	ctx := t.Context()
	pods := s.Client(t).CoreV1().Pods("default")
	p := pod("graceful", nil)
	p.Spec.NodeName = "n1"
	if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	grace := int64(20)
	if err := pods.Delete(ctx, "graceful", metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		t.Fatal(err)
	}
	got, err := pods.Get(ctx, "graceful", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("bound pod vanished at once: %v", err)
	}
	if got.DeletionTimestamp == nil || got.DeletionGracePeriodSeconds == nil || *got.DeletionGracePeriodSeconds != 20 {
		t.Fatalf("deletion not marked: ts=%v grace=%v", got.DeletionTimestamp, got.DeletionGracePeriodSeconds)
	}
	zero := int64(0)
	if err := pods.Delete(ctx, "graceful", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "graceful", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after grace-0 delete: got %v, want NotFound", err)
	}
}

// 50 clients incrementing one annotation with retry-on-conflict end at
// exactly 50 × N: no update is lost.
func TestConcurrentIncrementsLoseNothing(t *testing.T) {
	s := startAPI(t)
	ctx := t.Context()
	c := s.Client(t)
	cms := c.CoreV1().ConfigMaps("default")
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "counter", Annotations: map[string]string{"n": "0"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const clients, each = 50, 10
	// Fifty writers on one key conflict a lot; retry as long as it takes.
	backoff := wait.Backoff{Steps: 10000, Duration: 2 * time.Millisecond, Factor: 1, Jitter: 2}
	var wg sync.WaitGroup
	var conflicts sync.Map
	errc := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := retry.RetryOnConflict(backoff, func() error {
					cm, err := cms.Get(ctx, "counter", metav1.GetOptions{})
					if err != nil {
						return err
					}
					n, _ := strconv.Atoi(cm.Annotations["n"])
					cm.Annotations["n"] = strconv.Itoa(n + 1)
					_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
					if apierrors.IsConflict(err) {
						conflicts.Store(i, true)
					}
					return err
				})
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Errorf("increment: %v", err)
	}
	cm, err := cms.Get(ctx, "counter", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := strconv.Atoi(cm.Annotations["n"])
	n := 0
	conflicts.Range(func(any, any) bool { n++; return true })
	if n == 0 {
		t.Fatalf("no client ever saw a conflict: the test did not exercise concurrency")
	}
	if got != clients*each {
		t.Fatalf("counter = %d, want %d (%d clients saw conflicts)", got, clients*each, n)
	}
}

// client-go's typed clients send protobuf bodies by default.
func TestProtobufCreate(t *testing.T) {
	s := startAPI(t)
	c, err := kubernetes.NewForConfig(s.RESTConfig(""))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.CoreV1().Pods("default").Create(t.Context(), pod("proto", map[string]string{"via": "protobuf"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create with a protobuf body: %v", err)
	}
	got, err := s.Client(t).CoreV1().Pods("default").Get(t.Context(), "proto", metav1.GetOptions{})
	if err != nil || got.Labels["via"] != "protobuf" || got.UID != p.UID || got.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Fatalf("stored pod: %+v %v", got, err)
	}
}

// A sendInitialEvents watch delivers the existing objects, then the
// end-of-initial-events bookmark, then changes.
func TestSendInitialEvents(t *testing.T) {
	s := startAPI(t)
	ctx := t.Context()
	c := s.Client(t)
	cms := c.CoreV1().ConfigMaps("default")
	for _, n := range []string{"a", "b"} {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+
		"/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true", nil)
	req.Header.Set("Authorization", "Bearer "+s.AdminToken)
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	read := func() (string, metav1.ObjectMeta) {
		select {
		case l := <-lines:
			var ev struct {
				Type   string
				Object struct{ Metadata metav1.ObjectMeta }
			}
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatalf("bad frame %q: %v", l, err)
			}
			return ev.Type, ev.Object.Metadata
		case <-time.After(20 * time.Second):
			t.Fatal("no frame within 20 s")
		}
		return "", metav1.ObjectMeta{}
	}
	for _, want := range []string{"a", "b"} {
		if typ, m := read(); typ != "ADDED" || m.Name != want {
			t.Fatalf("initial event: got %s %s, want ADDED %s", typ, m.Name, want)
		}
	}
	typ, m := read()
	if typ != "BOOKMARK" || m.Annotations["k8s.io/initial-events-end"] != "true" || m.ResourceVersion == "" {
		t.Fatalf("after initial events: got %s %+v, want the initial-events-end bookmark", typ, m)
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		typ, m := read()
		if typ == "BOOKMARK" {
			continue
		}
		if typ != "ADDED" || m.Name != "c" {
			t.Fatalf("change: got %s %s, want ADDED c", typ, m.Name)
		}
		break
	}
}

// An informer from client-go (which uses watch-list by default) syncs and
// sees later changes.
func TestClientGoInformer(t *testing.T) {
	s := startAPI(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c, err := kubernetes.NewForConfig(s.RESTConfig(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithNamespace("default"))
	inf := f.Core().V1().ConfigMaps().Informer()
	events := make(chan string, 16)
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { events <- "add " + o.(*corev1.ConfigMap).Name },
		UpdateFunc: func(_, o any) { events <- "update " + o.(*corev1.ConfigMap).Name },
		DeleteFunc: func(o any) {
			if cm, ok := o.(*corev1.ConfigMap); ok {
				events <- "delete " + cm.Name
			}
		},
	}); err != nil {
		t.Fatal(err)
	}
	f.Start(ctx.Done())
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	if !cache.WaitForCacheSync(sctx.Done(), inf.HasSynced) {
		t.Fatal("informer did not sync in 30 s")
	}
	expect := func(want string) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case e := <-events:
				if e == want {
					return
				}
			case <-deadline:
				t.Fatalf("informer did not see %q", want)
			}
		}
	}
	expect("add before")
	cms := c.CoreV1().ConfigMaps("default")
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("add after")
	if _, err := cms.Patch(ctx, "after", types.MergePatchType, []byte(`{"data":{"k":"v"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("update after")
	if err := cms.Delete(ctx, "after", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("delete after")
}

// A label-selector watch sees an object that stops matching as DELETED.
func TestSelectorWatchTransitions(t *testing.T) {
	s := startAPI(t)
	ctx := t.Context()
	pods := s.Client(t).CoreV1().Pods("default")
	w, err := pods.Watch(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := pods.Create(ctx, pod("p", map[string]string{"app": "other"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		label string
		want  watch.EventType
	}{{"web", watch.Added}, {"web2", watch.Deleted}} {
		patch := fmt.Sprintf(`{"metadata":{"labels":{"app":%q}}}`, step.label)
		if _, err := pods.Patch(ctx, "p", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-w.ResultChan():
			if ev.Type != step.want {
				t.Fatalf("label %s: got %s, want %s", step.label, ev.Type, step.want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("label %s: no event", step.label)
		}
	}
}

func TestDeleteCollectionBySelector(t *testing.T) {
	s := startAPI(t)
	ctx := t.Context()
	pods := s.Client(t).CoreV1().Pods("default")
	for _, p := range []*corev1.Pod{pod("a1", map[string]string{"app": "a"}), pod("a2", map[string]string{"app": "a"}), pod("b1", map[string]string{"app": "b"})} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pods.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "app=a"}); err != nil {
		t.Fatal(err)
	}
	l, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(l.Items); got != "b1" {
		t.Fatalf("after deletecollection app=a: %s, want b1", got)
	}
}

func TestNamespaceLifecycleGuards(t *testing.T) {
	s := startAPI(t)
	ctx := t.Context()
	c := s.Client(t)
	for _, ns := range []string{"default", "kube-system", "kube-public"} {
		if err := c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("delete namespace %s: got %v, want Forbidden", ns, err)
		}
	}
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "doomed"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Hold the namespace in Terminating with a pod that has a finalizer.
	p := pod("held", nil)
	p.Finalizers = []string{"test.weir.dev/hold"}
	if _, err := c.CoreV1().Pods("doomed").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.CoreV1().Namespaces().Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 30*time.Second, "create into a terminating namespace is refused", func() (bool, error) {
		_, err := c.CoreV1().ConfigMaps("doomed").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "late-"}}, metav1.CreateOptions{})
		if apierrors.IsForbidden(err) && strings.Contains(err.Error(), "being terminated") {
			return true, nil
		}
		return false, err
	})
	if _, err := c.CoreV1().Pods("doomed").Patch(ctx, "held", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 30*time.Second, "namespace is gone", func() (bool, error) {
		_, err := c.CoreV1().Namespaces().Get(ctx, "doomed", metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
}

// startAPI starts a server whose leader runs the garbage collector and
// the namespace controller only: these tests write objects' status and
// compare resource versions themselves, which the workload controllers
// and the scheduler would race.
func startAPI(t *testing.T) *cluster.Server {
	t.Helper()
	return cluster.Start(t, cluster.WithLoops(cluster.APILoops()))
}

// kubectl describe finds an object's Events with involvedObject field
// selectors.
func TestEventFieldSelectors(t *testing.T) {
	s := startAPI(t)
	ctx := t.Context()
	evs := s.Client(t).CoreV1().Events("default")
	for _, obj := range []struct{ kind, name string }{{"Pod", "a"}, {"Pod", "b"}, {"Deployment", "a"}} {
		if _, err := evs.Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "ev-"}, Reason: "Test", Type: "Normal",
			InvolvedObject: corev1.ObjectReference{Kind: obj.kind, Name: obj.name, Namespace: "default"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	l, err := evs.List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Pod,involvedObject.name=a,involvedObject.namespace=default"})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 1 || l.Items[0].InvolvedObject.Kind != "Pod" || l.Items[0].InvolvedObject.Name != "a" {
		t.Fatalf("events for Pod a: %+v", l.Items)
	}
}

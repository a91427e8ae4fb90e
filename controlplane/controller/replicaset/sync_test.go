package replicaset

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// TestExpectationsHoldABurst runs sync against caches the test fills by
// hand, so the watch "lags" as long as the test wants: a second pass
// before the pods are seen must not create them again, and seeing them
// must let the ReplicaSet decide again.
func TestExpectationsHoldABurst(t *testing.T) {
	rs := testRS(5, 0)
	client := fake.NewClientset(rs)
	n := 0
	client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		n++
		p.Name = fmt.Sprintf("%s%05d", p.GenerateName, n)
		return false, nil, nil // let the tracker store it
	})
	rsIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	podIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	if err := rsIdx.Add(rs); err != nil {
		t.Fatal(err)
	}
	r := &run{
		client: client, rsLister: appslisters.NewReplicaSetLister(rsIdx), podLister: corelisters.NewPodLister(podIdx),
		exp: newExpectations(time.Now), log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now,
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
	}
	defer r.queue.ShutDown()
	creates := func() int {
		c := 0
		for _, a := range client.Actions() {
			if a.GetVerb() == "create" && a.GetResource().Resource == "pods" {
				c++
			}
		}
		return c
	}
	for pass := range 3 {
		if err := r.sync(t.Context(), "ns/web-abc"); err != nil {
			t.Fatalf("sync pass %d: %v", pass, err)
		}
	}
	if got := creates(); got != 5 {
		t.Fatalf("three passes before the watch caught up created %d pods; want 5", got)
	}

	// The watch reports four of the five: still waiting for one.
	list, err := client.CoreV1().Pods("ns").List(t.Context(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 5 {
		t.Fatalf("list pods = %d, %v; want 5", len(list.Items), err)
	}
	for i := range 4 {
		p := &list.Items[i]
		if err := podIdx.Add(p); err != nil {
			t.Fatal(err)
		}
		r.addPod(p)
	}
	if err := r.sync(t.Context(), "ns/web-abc"); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if got := creates(); got != 5 {
		t.Fatalf("a pass with one create unobserved created again: %d creates", got)
	}

	// One pod was lost meanwhile and the fifth arrives: the ReplicaSet
	// decides again and replaces the lost one.
	lost := &list.Items[0]
	if err := podIdx.Delete(lost); err != nil {
		t.Fatal(err)
	}
	r.deletePod(lost)
	if err := podIdx.Add(&list.Items[4]); err != nil {
		t.Fatal(err)
	}
	r.addPod(&list.Items[4])
	if err := r.sync(t.Context(), "ns/web-abc"); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if got := creates(); got != 6 {
		t.Fatalf("after the watch caught up and one pod went: %d creates, want 6", got)
	}
}

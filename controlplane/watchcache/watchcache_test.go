package watchcache_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"weir.dev/weir/controlplane/watchcache"
	"weir.dev/weir/test/etcdembed"
)

// decode makes a ConfigMap named after the value, enough to see order.
func decode(v []byte, rev int64) (runtime.Object, error) {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: string(v), ResourceVersion: fmt.Sprint(rev)}}, nil
}

func start(t *testing.T, cli *clientv3.Client, o watchcache.Options) *watchcache.Cache {
	t.Helper()
	o.Prefix, o.Decode = "/p/", decode
	c := watchcache.New(cli, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := c.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	return c
}

func put(t *testing.T, cli *clientv3.Client, k, v string) int64 {
	t.Helper()
	r, err := cli.Put(t.Context(), "/p/"+k, v)
	if err != nil {
		t.Fatal(err)
	}
	return r.Header.Revision
}

func next(t *testing.T, w *watchcache.Watcher) watchcache.Delivery {
	t.Helper()
	select {
	case d, ok := <-w.C:
		if !ok {
			t.Fatalf("watcher closed early")
		}
		return d
	case <-time.After(10 * time.Second):
		t.Fatalf("no event within 10 s")
	}
	return watchcache.Delivery{}
}

func name(d watchcache.Delivery) string { return d.Event.Object.(*corev1.ConfigMap).Name }

func TestWatchDeliversInOrderFromRevision(t *testing.T) {
	cli := etcdembed.Start(t)
	c := start(t, cli, watchcache.Options{})
	r1 := put(t, cli, "a", "a1")
	put(t, cli, "a", "a2")
	put(t, cli, "b", "b1")
	if _, err := cli.Delete(t.Context(), "/p/a"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(t.Context(), r1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	want := []struct {
		t    watch.EventType
		name string
	}{{watch.Modified, "a2"}, {watch.Added, "b1"}, {watch.Deleted, "a2"}}
	for _, x := range want {
		d := next(t, w)
		if d.Type != x.t || name(d) != x.name {
			t.Fatalf("got %s %s, want %s %s", d.Type, name(d), x.t, x.name)
		}
	}
}

// A resume older than the in-memory history is served from etcd without a gap.
func TestResumeOlderThanMemoryReadsEtcd(t *testing.T) {
	cli := etcdembed.Start(t)
	c := start(t, cli, watchcache.Options{History: 3})
	from := put(t, cli, "k", "v0")
	for i := 1; i <= 10; i++ {
		put(t, cli, "k", fmt.Sprintf("v%d", i))
	}
	// Let the cache see all of them so its memory holds only the last 3.
	deadline := time.Now().Add(10 * time.Second)
	for c.Rev() < from+10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	w, err := c.Watch(t.Context(), from, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := 1; i <= 10; i++ {
		if d := next(t, w); name(d) != fmt.Sprintf("v%d", i) {
			t.Fatalf("event %d: got %s", i, name(d))
		}
	}
	put(t, cli, "k", "live")
	if d := next(t, w); name(d) != "live" {
		t.Fatalf("live event: got %s", name(d))
	}
}

func TestResumeFromCompactedRevisionIsGone(t *testing.T) {
	cli := etcdembed.Start(t)
	c := start(t, cli, watchcache.Options{History: 2})
	old := put(t, cli, "k", "v0")
	var last int64
	for i := range 5 {
		last = put(t, cli, "k", fmt.Sprint(i))
	}
	if _, err := cli.Compact(t.Context(), last); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Rev() < last && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := c.Watch(t.Context(), old, nil, false); !errors.Is(err, watchcache.ErrGone) {
		t.Fatalf("got %v, want ErrGone", err)
	}
}

// A watcher that does not read is closed; the others keep receiving.
func TestSlowWatcherIsClosedOthersContinue(t *testing.T) {
	cli := etcdembed.Start(t)
	c := start(t, cli, watchcache.Options{Buffer: 4})
	slow, err := c.Watch(t.Context(), c.Rev(), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := c.Watch(t.Context(), c.Rev(), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Stop()
	got := make(chan int)
	go func() {
		n := 0
		for range fast.C {
			n++
			if n == 20 {
				got <- n
				return
			}
		}
		got <- n
	}()
	for i := range 20 {
		put(t, cli, "k", fmt.Sprint(i))
	}
	if n := <-got; n != 20 {
		t.Fatalf("fast watcher got %d events, want 20", n)
	}
	drained := 0
	for range slow.C {
		drained++
	}
	if !slow.Overflowed() || drained > 4 {
		t.Fatalf("slow watcher: overflowed=%v after %d buffered events; want closed after at most 4", slow.Overflowed(), drained)
	}
}

func TestFilterTurnsModifiedIntoAddedAndDeleted(t *testing.T) {
	cli := etcdembed.Start(t)
	c := start(t, cli, watchcache.Options{})
	// Match objects whose value starts with "in".
	match := func(o runtime.Object) bool {
		return o != nil && len(o.(*corev1.ConfigMap).Name) >= 2 && o.(*corev1.ConfigMap).Name[:2] == "in"
	}
	filter := func(e *watchcache.Event) (watch.EventType, bool) {
		cur := match(e.Object)
		if e.Type != watch.Modified {
			return e.Type, cur
		}
		prev := match(e.Prev())
		switch {
		case cur && prev:
			return watch.Modified, true
		case cur:
			return watch.Added, true
		case prev:
			return watch.Deleted, true
		}
		return "", false
	}
	w, err := c.Watch(t.Context(), c.Rev(), filter, false)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	put(t, cli, "k", "out1")
	put(t, cli, "k", "in1")
	put(t, cli, "k", "in2")
	put(t, cli, "k", "out2")
	for _, want := range []watch.EventType{watch.Added, watch.Modified, watch.Deleted} {
		if d := next(t, w); d.Type != want {
			t.Fatalf("got %s (%s), want %s", d.Type, name(d), want)
		}
	}
}

func TestBookmarksCarryTheCurrentRevision(t *testing.T) {
	cli := etcdembed.Start(t)
	c := start(t, cli, watchcache.Options{BookmarkInterval: 50 * time.Millisecond})
	r := put(t, cli, "k", "v")
	w, err := c.Watch(t.Context(), r, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	d := next(t, w)
	if d.Type != watch.Bookmark || d.Event.Rev < r {
		t.Fatalf("got %s at %d, want a bookmark at ≥ %d", d.Type, d.Event.Rev, r)
	}
}

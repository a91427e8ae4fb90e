package leader_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"weir.dev/weir/controlplane/leader"
	"weir.dev/weir/test/etcdembed"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Exactly one of two electors runs the work; when it stops, the other
// takes over; work never runs on both at once.
func TestOneLeaderAndFailover(t *testing.T) {
	cli := etcdembed.Start(t)
	var running atomic.Int32
	var overlap atomic.Bool
	work := func(ctx context.Context) {
		if running.Add(1) > 1 {
			overlap.Store(true)
		}
		<-ctx.Done()
		running.Add(-1)
	}
	a, err := leader.New(cli, "a", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := leader.New(cli, "b", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	actx, stopA := context.WithCancel(t.Context())
	bctx, stopB := context.WithCancel(t.Context())
	defer stopB()
	doneA := make(chan struct{})
	go func() { _ = a.Run(actx, work); close(doneA) }()
	waitFor(t, "a leads", a.Leading)
	go func() { _ = b.Run(bctx, work) }()
	// b campaigns but must wait.
	time.Sleep(300 * time.Millisecond)
	if b.Leading() {
		t.Fatal("b leads while a does")
	}
	if id, _ := b.Leader(t.Context()); id != "a" {
		t.Fatalf("leader key says %q, want a", id)
	}
	stopA()
	<-doneA
	waitFor(t, "b leads after a stops", b.Leading)
	if id, _ := a.Leader(t.Context()); id != "b" {
		t.Fatalf("leader key says %q, want b", id)
	}
	if overlap.Load() {
		t.Fatal("work ran on two electors at once")
	}
}

func TestNewRejectsBadArguments(t *testing.T) {
	cli := etcdembed.Start(t)
	for _, tc := range []struct {
		id  string
		ttl int
	}{{"", 5}, {"x", 0}} {
		if _, err := leader.New(cli, tc.id, tc.ttl, nil); err == nil {
			t.Errorf("New(%q, %d) accepted", tc.id, tc.ttl)
		}
	}
}

package storage_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"weir.dev/weir/controlplane/storage"
	"weir.dev/weir/test/etcdembed"
	"weir.dev/weir/test/etcdproc"
)

// backends runs each test against embedded etcd and a real external etcd.
func backends(t *testing.T, f func(t *testing.T, s *storage.Store)) {
	t.Run("embedded", func(t *testing.T) { f(t, storage.New(etcdembed.Start(t), nil)) })
	t.Run("external", func(t *testing.T) {
		c := etcdproc.Start(t)
		cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		f(t, storage.New(cli, nil))
	})
}

func TestCreateUpdateDelete(t *testing.T) {
	backends(t, func(t *testing.T, s *storage.Store) {
		ctx := t.Context()
		rev, err := s.Create(ctx, "/registry/core/pods/ns/a", []byte("v1"), storage.Claims{})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if _, err := s.Create(ctx, "/registry/core/pods/ns/a", []byte("v1"), storage.Claims{}); !errors.Is(err, storage.ErrExists) {
			t.Fatalf("second create: got %v, want ErrExists", err)
		}
		kv, err := s.Get(ctx, "/registry/core/pods/ns/a")
		if err != nil || kv.Rev != rev || string(kv.Value) != "v1" {
			t.Fatalf("get: %+v %v, want rev %d value v1", kv, err, rev)
		}
		rev2, err := s.Update(ctx, kv.Key, []byte("v2"), rev, storage.Claims{})
		if err != nil || rev2 <= rev {
			t.Fatalf("update: rev %d err %v", rev2, err)
		}
		if _, err := s.Update(ctx, kv.Key, []byte("v3"), rev, storage.Claims{}); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("stale update: got %v, want ErrConflict", err)
		}
		if _, err := s.Update(ctx, "/registry/core/pods/ns/missing", []byte("v"), 5, storage.Claims{}); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("update of missing: got %v, want ErrNotFound", err)
		}
		if _, err := s.Delete(ctx, kv.Key, rev, storage.Claims{}); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("stale delete: got %v, want ErrConflict", err)
		}
		if _, err := s.Delete(ctx, kv.Key, rev2, storage.Claims{}); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if _, err := s.Get(ctx, kv.Key); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("get after delete: got %v, want ErrNotFound", err)
		}
	})
}

func TestClaimsAreExclusiveAndReleased(t *testing.T) {
	backends(t, func(t *testing.T, s *storage.Store) {
		ctx := t.Context()
		claim := "/registry/ranges/serviceips/10.96.0.10"
		if _, err := s.Create(ctx, "/svc/a", []byte("a"), storage.Claims{Take: []string{claim}}); err != nil {
			t.Fatalf("create a: %v", err)
		}
		_, err := s.Create(ctx, "/svc/b", []byte("b"), storage.Claims{Take: []string{claim}})
		var taken *storage.ClaimTakenError
		if !errors.As(err, &taken) || taken.Owner != "/svc/a" {
			t.Fatalf("create b with a's claim: got %v, want ClaimTakenError owned by /svc/a", err)
		}
		if _, err := s.Get(ctx, "/svc/b"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("b was written although its claim failed: %v", err)
		}
		if _, err := s.Delete(ctx, "/svc/a", 0, storage.Claims{Release: []string{claim}}); err != nil {
			t.Fatalf("delete a: %v", err)
		}
		if _, err := s.Create(ctx, "/svc/b", []byte("b"), storage.Claims{Take: []string{claim}}); err != nil {
			t.Fatalf("create b after release: %v", err)
		}
	})
}

func TestRequireMissingKeyWritesNothing(t *testing.T) {
	backends(t, func(t *testing.T, s *storage.Store) {
		ctx := t.Context()
		_, err := s.Create(ctx, "/registry/core/pods/gone/p", []byte("p"), storage.Claims{Require: []string{"/registry/core/namespaces/gone"}})
		var missing *storage.MissingError
		if !errors.As(err, &missing) {
			t.Fatalf("got %v, want MissingError", err)
		}
		if _, err := s.Get(ctx, "/registry/core/pods/gone/p"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("object written despite missing namespace: %v", err)
		}
	})
}

// Many writers incrementing one value with compare-and-swap lose nothing.
func TestConcurrentCompareAndSwap(t *testing.T) {
	backends(t, func(t *testing.T, s *storage.Store) {
		ctx := t.Context()
		if _, err := s.Create(ctx, "/counter", []byte("0"), storage.Claims{}); err != nil {
			t.Fatal(err)
		}
		const writers, each = 20, 10
		var wg sync.WaitGroup
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					for {
						kv, err := s.Get(ctx, "/counter")
						if err != nil {
							t.Error(err)
							return
						}
						var n int
						fmt.Sscan(string(kv.Value), &n)
						if _, err := s.Update(ctx, "/counter", []byte(fmt.Sprint(n+1)), kv.Rev, storage.Claims{}); err == nil {
							break
						} else if !errors.Is(err, storage.ErrConflict) {
							t.Error(err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		kv, _ := s.Get(ctx, "/counter")
		if string(kv.Value) != fmt.Sprint(writers*each) {
			t.Fatalf("counter = %s, want %d", kv.Value, writers*each)
		}
	})
}

func TestCheckRevisionAfterCompaction(t *testing.T) {
	backends(t, func(t *testing.T, s *storage.Store) {
		ctx := t.Context()
		r1, _ := s.Create(ctx, "/x/1", []byte("1"), storage.Claims{})
		r2, _ := s.Create(ctx, "/x/2", []byte("2"), storage.Claims{})
		if err := s.CheckRevision(ctx, "/x/", r1); err != nil {
			t.Fatalf("check before compaction: %v", err)
		}
		if err := s.Compact(ctx, r2); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckRevision(ctx, "/x/", r1); !errors.Is(err, storage.ErrCompacted) {
			t.Fatalf("check of compacted revision: got %v, want ErrCompacted", err)
		}
		if err := s.CheckRevision(ctx, "/x/", r2); err != nil {
			t.Fatalf("check of the compaction revision itself: %v", err)
		}
	})
}

package apiserver

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"weir.dev/weir/controlplane/resources"
)

// SystemNamespaces always exist; EnsureNamespaces creates any that are missing.
var SystemNamespaces = []string{"default", "kube-system", "kube-public", "kube-node-lease"}

var namespacesRes = resources.ByGVK(corev1.SchemeGroupVersion.WithKind("Namespace"))

// immortalNamespaces may not be deleted, as in Kubernetes.
var immortalNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true}

// namespaceTracker remembers which namespaces are terminating, from the
// namespace watch cache, so a create into one is refused without an extra
// etcd read. It is eventually consistent; the namespace controller sweeps
// whatever slips in during the window.
type namespaceTracker struct {
	mu          sync.RWMutex
	terminating map[string]bool
}

func (t *namespaceTracker) isTerminating(ns string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.terminating[ns]
}

func (t *namespaceTracker) set(ns string, term bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if term {
		t.terminating[ns] = true
	} else {
		delete(t.terminating, ns)
	}
}

// trackNamespaces follows namespaces until ctx ends: list, then watch from
// the list's revision, again whenever the watch closes.
func (s *Server) trackNamespaces(ctx context.Context) {
	for ctx.Err() == nil {
		kvs, rev, err := s.store.List(ctx, namespacesRes.KeyPrefix())
		if err != nil {
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		fresh := map[string]bool{}
		for _, kv := range kvs {
			if o, err := decodeStored(namespacesRes, kv.Value, kv.Rev); err == nil {
				if ns := o.(*corev1.Namespace); ns.DeletionTimestamp != nil {
					fresh[ns.Name] = true
				}
			}
		}
		s.namespaces.mu.Lock()
		s.namespaces.terminating = fresh
		s.namespaces.mu.Unlock()
		w, err := s.caches[namespacesRes].Watch(ctx, rev, nil, false)
		if err != nil {
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		for d := range w.C {
			ns := d.Event.Object.(*corev1.Namespace)
			s.namespaces.set(ns.Name, d.Type != watch.Deleted && ns.DeletionTimestamp != nil)
		}
		w.Stop()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// EnsureNamespaces creates the namespaces that always exist. Safe to call
// from several servers at once.
func (s *Server) EnsureNamespaces(ctx context.Context) error {
	for _, n := range SystemNamespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}
		_, err := s.create(ctx, requestInfo{Verb: "create", Res: namespacesRes}, ns, false)
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", n, err)
		}
	}
	return nil
}

package gc

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// errWatchClosed ends a watch that closed before delivering anything, so
// a server that keeps closing watches at once meets back-off, not a spin.
var errWatchClosed = errors.New("gc: watch closed without events")

// reflect keeps the graph in step with one resource until ctx ends: a
// list, then a watch from the list's resourceVersion, resumed from the
// last resourceVersion seen while the server can, re-listed when it
// cannot (410 Gone after compaction, or any other error). synced is
// called once, after the first list.
//
// It is a small stand-in for client-go's reflector: the graph is the
// collector's only cache, so no informer store is kept.
func (c *collector) reflect(ctx context.Context, r resource, synced func()) {
	known := map[types.UID]struct{}{}
	const initialWait = 100 * time.Millisecond
	wait := initialWait
	for first := true; ctx.Err() == nil; {
		rv, err := c.relist(ctx, r, known)
		if err == nil {
			if first {
				synced()
				first = false
			}
			wait = initialWait
			for err == nil && ctx.Err() == nil {
				rv, err = c.watch(ctx, r, rv, known)
			}
		}
		if ctx.Err() != nil {
			return
		}
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			c.log.Debug("watch expired; re-listing", slog.String("resource", r.GVR.String()))
			continue
		}
		c.log.Warn("list and watch; retrying", slog.String("resource", r.GVR.String()), slog.Any("error", err), slog.Duration("retry_in", wait))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// relist reads every object of r into the graph, forgets the ones known
// before that are gone, and returns the list's resourceVersion.
func (c *collector) relist(ctx context.Context, r resource, known map[types.UID]struct{}) (string, error) {
	list, err := c.dyn.Resource(r.GVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	seen := make(map[types.UID]struct{}, len(list.Items))
	for i := range list.Items {
		o := &list.Items[i]
		seen[o.GetUID()] = struct{}{}
		c.observe(toNode(r.GVR, o))
	}
	for uid := range known {
		if _, ok := seen[uid]; !ok {
			delete(known, uid)
			c.forget(uid)
		}
	}
	for uid := range seen {
		known[uid] = struct{}{}
	}
	return list.GetResourceVersion(), nil
}

// watch applies one watch's events to the graph and returns the last
// resourceVersion seen; a nil error means the watch may be resumed.
func (c *collector) watch(ctx context.Context, r resource, rv string, known map[types.UID]struct{}) (string, error) {
	timeout := int64(300 + rand.IntN(300)) // spread re-watches, as client-go does
	w, err := c.dyn.Resource(r.GVR).Watch(ctx, metav1.ListOptions{
		ResourceVersion: rv, AllowWatchBookmarks: true, TimeoutSeconds: &timeout,
	})
	if err != nil {
		return rv, err
	}
	defer w.Stop()
	events := 0
	for {
		select {
		case <-ctx.Done():
			return rv, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				if events == 0 {
					return rv, errWatchClosed
				}
				return rv, nil
			}
			events++
			if ev.Type == watch.Error {
				return rv, apierrors.FromObject(ev.Object)
			}
			m, err := meta.Accessor(ev.Object)
			if err != nil {
				continue
			}
			if v := m.GetResourceVersion(); v != "" {
				rv = v
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				known[m.GetUID()] = struct{}{}
				c.observe(toNode(r.GVR, m))
			case watch.Deleted:
				delete(known, m.GetUID())
				c.forget(m.GetUID())
			}
		}
	}
}

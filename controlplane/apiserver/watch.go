package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"weir.dev/weir/controlplane/resources"
	"weir.dev/weir/controlplane/storage"
	"weir.dev/weir/controlplane/watchcache"
)

// InitialEventsAnnotation marks the bookmark that ends a watch's initial
// events (sendInitialEvents=true), as client-go's watch-list expects.
const InitialEventsAnnotation = "k8s.io/initial-events-end"

// watchFilter narrows a watch to a namespace and selectors. A Modified
// object that starts or stops matching is an Added or Deleted for this
// watcher, as the Kubernetes watch cache reports it. Labels and fields come
// from the event, computed once for all watchers.
func watchFilter(ns string, ls labels.Selector, fs fields.Selector) watchcache.Filter {
	match := func(l labels.Set, f fields.Set) bool {
		if ns != "" && f["metadata.namespace"] != ns {
			return false
		}
		return (ls.Empty() || ls.Matches(l)) && (fs.Empty() || fs.Matches(f))
	}
	trivial := ls.Empty() && fs.Empty()
	return func(e *watchcache.Event) (watch.EventType, bool) {
		cur := match(e.Attrs())
		if e.Type != watch.Modified || trivial {
			return e.Type, cur
		}
		pl, pf, ok := e.PrevAttrs()
		prev := ok && match(pl, pf)
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
}

// objectAttrs is the watch cache's AttrFunc.
func objectAttrs(obj runtime.Object) (labels.Set, fields.Set) {
	var l labels.Set
	if m, err := meta.Accessor(obj); err == nil {
		l = labels.Set(m.GetLabels())
	}
	return l, fieldSet(obj)
}

func encodeFrame(t watch.EventType, obj any) ([]byte, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(len(b) + 32)
	buf.WriteString(`{"type":"`)
	buf.WriteString(string(t))
	buf.WriteString(`","object":`)
	buf.Write(b)
	buf.WriteString("}\n")
	return buf.Bytes(), nil
}

func (s *Server) bookmarkFrame(res *resources.Resource, rev int64, initialEnd bool) ([]byte, error) {
	obj := res.New()
	setTypeMeta(obj, res)
	m, _ := meta.Accessor(obj)
	m.SetResourceVersion(strconv.FormatInt(rev, 10))
	if initialEnd {
		m.SetAnnotations(map[string]string{InitialEventsAnnotation: "true"})
	}
	return encodeFrame(watch.Bookmark, obj)
}

func (s *Server) serveWatch(w http.ResponseWriter, r *http.Request, ri requestInfo) {
	ctx := r.Context()
	q := r.URL.Query()
	ls, fs, err := selectors(ri.Res, q)
	if err != nil {
		writeError(w, err)
		return
	}
	if ri.Name != "" {
		fs = fields.AndSelectors(fs, fields.OneTermEqualSelector("metadata.name", ri.Name))
	}
	bookmarks := first(q["allowWatchBookmarks"]) == "true"
	sendInitial := first(q["sendInitialEvents"]) == "true"
	rvParam := first(q["resourceVersion"])
	if sendInitial && first(q["resourceVersionMatch"]) != string(metav1.ResourceVersionMatchNotOlderThan) {
		writeError(w, apierrors.NewBadRequest("sendInitialEvents requires resourceVersionMatch=NotOlderThan"))
		return
	}
	timeout := 30 * time.Minute
	if v := first(q["timeoutSeconds"]); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, apierrors.NewBadRequest(fmt.Sprintf("invalid timeoutSeconds %q", v)))
			return
		}
		if n > 0 {
			timeout = time.Duration(n) * time.Second
		}
	}
	rep, represented := wantedRepresentation(r, "watch")
	filter := watchFilter(ri.Namespace, ls, fs)
	cache := s.caches[ri.Res]

	// Which objects come first as ADDED, and the revision after which
	// the cache takes over.
	var initial []runtime.Object
	var from int64
	switch {
	case sendInitial || rvParam == "" || rvParam == "0":
		var minRV int64
		if sendInitial && rvParam != "" && rvParam != "0" {
			minRV, _ = strconv.ParseInt(rvParam, 10, 64)
		}
		initial, from, err = s.listObjects(ctx, ri.Res, ri.Namespace, ls, fs)
		if err != nil {
			writeError(w, err)
			return
		}
		if from < minRV {
			writeError(w, apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", minRV, from), 1))
			return
		}
	default:
		from, err = strconv.ParseInt(rvParam, 10, 64)
		if err != nil || from < 0 {
			writeError(w, apierrors.NewBadRequest(fmt.Sprintf("invalid resourceVersion %q", rvParam)))
			return
		}
		if err := s.store.CheckRevision(ctx, ri.Res.KeyPrefix(), from); errors.Is(err, storage.ErrCompacted) {
			writeError(w, apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d", from)))
			return
		}
	}
	wt, err := cache.Watch(ctx, from, filter, bookmarks)
	if errors.Is(err, watchcache.ErrGone) {
		writeError(w, apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d", from)))
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	defer wt.Stop()
	g := s.m.watchers.WithLabelValues(ri.Res.Plural)
	g.Inc()
	defer g.Dec()

	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", mediaJSON)
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	for _, o := range initial {
		var b []byte
		if represented {
			b, err = encodeRepresentedFrame(ri.Res, watch.Added, o, rep, time.Now())
		} else {
			b, err = encodeFrame(watch.Added, o)
		}
		if err != nil || writeFrame(w, b) != nil {
			return
		}
	}
	if sendInitial {
		b, err := s.bookmarkFrame(ri.Res, from, true)
		if err != nil || writeFrame(w, b) != nil {
			return
		}
	}
	if flusher != nil {
		flusher.Flush()
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case d, ok := <-wt.C:
			if !ok {
				return
			}
			// Drain what is queued before flushing: one flush per burst.
			for {
				if err := s.writeDelivery(w, ri.Res, d, rep, represented); err != nil {
					return
				}
				select {
				case d, ok = <-wt.C:
					if !ok {
						if flusher != nil {
							flusher.Flush()
						}
						return
					}
					continue
				default:
				}
				break
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
	}
}

func (s *Server) writeDelivery(w http.ResponseWriter, res *resources.Resource, d watchcache.Delivery, rep representation, represented bool) error {
	if d.Type == watch.Bookmark {
		b, err := s.bookmarkFrame(res, d.Event.Rev, false)
		if err != nil {
			return err
		}
		return writeFrame(w, b)
	}
	if represented {
		b, err := d.Event.Frame(representedFormat(d.Type, rep), func(e *watchcache.Event) ([]byte, error) {
			return encodeRepresentedFrame(res, d.Type, e.Object, rep, time.Now())
		})
		if err != nil {
			return err
		}
		return writeFrame(w, b)
	}
	b, err := d.Event.Frame("json/"+string(d.Type), func(e *watchcache.Event) ([]byte, error) {
		return encodeFrame(d.Type, e.Object)
	})
	if err != nil {
		return err
	}
	return writeFrame(w, b)
}

func writeFrame(w http.ResponseWriter, b []byte) error {
	_, err := w.Write(b)
	return err
}

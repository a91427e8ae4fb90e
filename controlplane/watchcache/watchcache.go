// Package watchcache fans one etcd watch per resource out to any number of
// API watchers. Each event is decoded once and encoded once per wire format,
// however many watchers receive it; each watcher has a bounded buffer and one
// that cannot keep up is closed (its client resumes or re-lists) instead of
// stalling the others. It owns no storage: it reads etcd through the client
// it is given and never writes.
package watchcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// ErrGone means the requested revision is older than the history kept
// anywhere (etcd compacted it): the client must re-list (HTTP 410).
var ErrGone = errors.New("watchcache: revision too old")

// Decoder turns a stored value into an object whose resourceVersion is rev.
type Decoder func(value []byte, rev int64) (runtime.Object, error)

// Event is one change, shared read-only by every watcher that receives it.
type Event struct {
	Type watch.EventType // Added, Modified, Deleted or Bookmark
	Key  string
	Rev  int64
	// Object is the new object; for Deleted, the last state with the delete's
	// revision as its resourceVersion. Nil for Bookmark.
	Object runtime.Object
	prev   []byte
	dec    Decoder
	attrs  AttrFunc

	attrOnce sync.Once
	labels   labels.Set
	fields   fields.Set

	prevAttrOnce sync.Once
	prevLabels   labels.Set
	prevFields   fields.Set

	prevOnce sync.Once
	prevObj  runtime.Object

	mu     sync.Mutex
	frames map[string][]byte
}

// Prev decodes the object's state before a Modified event, once, on first
// use; watchers with a selector need it to turn a change of labels into an
// Added or Deleted. Nil when there was none.
func (e *Event) Prev() runtime.Object {
	e.prevOnce.Do(func() {
		if e.prev != nil {
			if o, err := e.dec(e.prev, e.Rev); err == nil {
				e.prevObj = o
			}
		}
	})
	return e.prevObj
}

// AttrFunc extracts what selectors match on.
type AttrFunc func(obj runtime.Object) (labels.Set, fields.Set)

// Attrs returns the object's labels and selectable fields, computed once
// per event however many watchers filter on them.
func (e *Event) Attrs() (labels.Set, fields.Set) {
	e.attrOnce.Do(func() {
		if e.attrs != nil && e.Object != nil {
			e.labels, e.fields = e.attrs(e.Object)
		}
	})
	return e.labels, e.fields
}

// PrevAttrs is Attrs of Prev, computed once.
func (e *Event) PrevAttrs() (labels.Set, fields.Set, bool) {
	p := e.Prev()
	if p == nil {
		return nil, nil, false
	}
	e.prevAttrOnce.Do(func() {
		if e.attrs != nil {
			e.prevLabels, e.prevFields = e.attrs(p)
		}
	})
	return e.prevLabels, e.prevFields, true
}

// Frame returns the event encoded for one wire format, encoding it once for
// all watchers that share the format.
func (e *Event) Frame(format string, encode func(*Event) ([]byte, error)) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if b, ok := e.frames[format]; ok {
		return b, nil
	}
	b, err := encode(e)
	if err != nil {
		return nil, err
	}
	if e.frames == nil {
		e.frames = map[string][]byte{}
	}
	e.frames[format] = b
	return b, nil
}

// Filter decides what a watcher sees. It may rewrite the event type (a
// Modified object that stops matching is a Deleted for that watcher).
// It returns false to skip the event.
type Filter func(e *Event) (watch.EventType, bool)

// Delivery is one event as one watcher sees it.
type Delivery struct {
	Type  watch.EventType
	Event *Event
}

// Watcher receives the events after the revision it started from, in order.
// Its channel closes when the watcher falls behind, the cache stops or Stop
// is called.
type Watcher struct {
	C         <-chan Delivery
	c         chan Delivery
	filter    Filter
	bookmarks bool
	// after is the revision the watcher started from: a live event at or
	// below it (the cache had not seen it yet when the watch began) is
	// already known to the client.
	after  int64
	cache  *Cache
	once   sync.Once
	closed bool // guarded by cache.mu
	// Overflowed is true when the watcher was closed for falling behind.
	overflowed bool
}

// Stop unregisters the watcher; it is idempotent.
func (w *Watcher) Stop() {
	w.cache.mu.Lock()
	defer w.cache.mu.Unlock()
	w.cache.closeLocked(w)
}

// Overflowed reports whether the watcher was closed because it fell behind.
func (w *Watcher) Overflowed() bool {
	w.cache.mu.Lock()
	defer w.cache.mu.Unlock()
	return w.overflowed
}

// Options configure a Cache.
type Options struct {
	Prefix string
	Decode Decoder
	// Attrs extracts labels and fields for selectors (optional).
	Attrs AttrFunc
	// History is how many recent events are kept in memory for watchers that
	// resume from a recent revision (default 4096). Older resumes are served
	// from etcd's history.
	History int
	// Buffer is each watcher's queue length (default 1024).
	Buffer int
	// BookmarkInterval is how often watchers that asked for bookmarks get one
	// (default 10 s).
	BookmarkInterval time.Duration
	Logger           *slog.Logger
	// OnOverflow is called (without locks held) when a watcher is closed for
	// falling behind; for metrics.
	OnOverflow func()
}

// Cache is the fan-out point for one resource. Safe for concurrent use.
type Cache struct {
	cli  *clientv3.Client
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	cond     *sync.Cond
	ring     []*Event // oldest first
	floor    int64    // every event with Rev > floor is in ring
	rev      int64    // newest revision seen (events or progress)
	started  bool
	watchers map[*Watcher]struct{}
}

// New builds a cache; Run starts it.
func New(cli *clientv3.Client, opts Options) *Cache {
	if opts.History <= 0 {
		opts.History = 4096
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 1024
	}
	if opts.BookmarkInterval <= 0 {
		opts.BookmarkInterval = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Cache{cli: cli, opts: opts, log: opts.Logger.With("prefix", opts.Prefix), watchers: map[*Watcher]struct{}{}}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// Run follows etcd until ctx ends. It restarts its etcd watch if it breaks;
// if etcd compacted past it, every watcher is closed so clients re-list.
func (c *Cache) Run(ctx context.Context) error {
	defer c.closeAll()
	for {
		start, err := c.currentRev(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.log.Warn("read revision", slog.Any("error", err))
			if !sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		c.mu.Lock()
		if !c.started || start > c.rev {
			// First start, or resuming after a compaction gap: history
			// before start is etcd's to serve.
			if c.started {
				c.closeAllLocked()
			}
			c.ring = nil
			c.floor, c.rev = start, start
			c.started = true
		}
		from := c.rev
		c.cond.Broadcast()
		c.mu.Unlock()
		err = c.follow(ctx, from)
		if ctx.Err() != nil {
			return nil
		}
		c.log.Warn("etcd watch ended; restarting", slog.Any("error", err))
		if !sleep(ctx, 100*time.Millisecond) {
			return nil
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (c *Cache) currentRev(ctx context.Context) (int64, error) {
	resp, err := c.cli.Get(ctx, c.opts.Prefix, clientv3.WithCountOnly(), clientv3.WithLimit(1))
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// follow streams etcd events after rev into the ring and to watchers.
func (c *Cache) follow(ctx context.Context, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := c.cli.Watch(wctx, c.opts.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1),
		clientv3.WithPrevKV(), clientv3.WithProgressNotify())
	tick := time.NewTicker(c.opts.BookmarkInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			c.bookmark()
		case resp, ok := <-wch:
			if !ok {
				return errors.New("watch channel closed")
			}
			if err := resp.Err(); err != nil {
				if errors.Is(err, rpctypes.ErrCompacted) {
					c.mu.Lock()
					c.closeAllLocked()
					c.mu.Unlock()
				}
				return err
			}
			events := make([]*Event, 0, len(resp.Events))
			for _, ev := range resp.Events {
				e, err := c.convert(ev)
				if err != nil {
					c.log.Error("decode event", slog.String("key", string(ev.Kv.Key)), slog.Any("error", err))
					continue
				}
				events = append(events, e)
			}
			c.dispatch(events, resp.Header.Revision)
		}
	}
}

func (c *Cache) convert(ev *clientv3.Event) (*Event, error) {
	e := &Event{Key: string(ev.Kv.Key), Rev: ev.Kv.ModRevision, dec: c.opts.Decode, attrs: c.opts.Attrs}
	switch {
	case ev.Type == mvccpb.DELETE:
		e.Type = watch.Deleted
		if ev.PrevKv == nil {
			return nil, fmt.Errorf("delete without previous value")
		}
		o, err := c.opts.Decode(ev.PrevKv.Value, ev.Kv.ModRevision)
		if err != nil {
			return nil, err
		}
		e.Object = o
	default:
		e.Type = watch.Modified
		if ev.IsCreate() {
			e.Type = watch.Added
		} else if ev.PrevKv != nil {
			e.prev = ev.PrevKv.Value
		}
		o, err := c.opts.Decode(ev.Kv.Value, ev.Kv.ModRevision)
		if err != nil {
			return nil, err
		}
		e.Object = o
	}
	return e, nil
}

func (c *Cache) dispatch(events []*Event, headerRev int64) {
	var overflowed int
	c.mu.Lock()
	for _, e := range events {
		c.ring = append(c.ring, e)
		if len(c.ring) > c.opts.History {
			c.floor = c.ring[0].Rev
			c.ring[0] = nil
			c.ring = c.ring[1:]
		}
		for w := range c.watchers {
			if !c.sendLocked(w, e) {
				overflowed++
			}
		}
		c.rev = e.Rev
	}
	if headerRev > c.rev {
		c.rev = headerRev
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	if c.opts.OnOverflow != nil {
		for range overflowed {
			c.opts.OnOverflow()
		}
	}
}

// sendLocked offers e to w without blocking; false if w overflowed.
func (c *Cache) sendLocked(w *Watcher, e *Event) bool {
	if e.Rev <= w.after {
		return true
	}
	t, ok := watch.EventType(e.Type), true
	if w.filter != nil {
		t, ok = w.filter(e)
	}
	if !ok {
		return true
	}
	select {
	case w.c <- Delivery{Type: t, Event: e}:
		return true
	default:
		w.overflowed = true
		c.closeLocked(w)
		return false
	}
}

func (c *Cache) bookmark() {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := &Event{Type: watch.Bookmark, Rev: c.rev}
	for w := range c.watchers {
		if w.bookmarks && b.Rev >= w.after {
			select {
			case w.c <- Delivery{Type: watch.Bookmark, Event: b}:
			default: // a full queue will carry a later event instead
			}
		}
	}
}

func (c *Cache) closeLocked(w *Watcher) {
	if w.closed {
		return
	}
	w.closed = true
	delete(c.watchers, w)
	close(w.c)
}

func (c *Cache) closeAllLocked() {
	for w := range c.watchers {
		c.closeLocked(w)
	}
}

func (c *Cache) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeAllLocked()
	c.started = false
	c.cond.Broadcast()
}

// Rev is the newest revision the cache has seen.
func (c *Cache) Rev() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rev
}

// WaitReady blocks until the cache follows etcd or ctx ends.
func (c *Cache) WaitReady(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for !c.started {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.cond.Wait()
	}
	return nil
}

// Watch returns a watcher that receives, in order, every event with a
// revision above rev that passes filter. If rev is older than the cache's
// memory, the missing stretch is read from etcd's history first (ErrGone if
// etcd compacted it).
func (c *Cache) Watch(ctx context.Context, rev int64, filter Filter, bookmarks bool) (*Watcher, error) {
	if err := c.WaitReady(ctx); err != nil {
		return nil, err
	}
	w := &Watcher{filter: filter, bookmarks: bookmarks, cache: c}
	w.c = make(chan Delivery, c.opts.Buffer)
	w.C = w.c
	var backlog []*Event
	for {
		c.mu.Lock()
		if rev >= c.floor {
			w.after = rev
			// Replay what the ring holds after rev, then go live; both
			// under the lock so nothing slips between.
			for _, e := range c.ring {
				if e.Rev > rev && !c.sendLocked(w, e) {
					c.mu.Unlock()
					return nil, fmt.Errorf("watch from %d: backlog exceeds the watcher buffer", rev)
				}
			}
			if !w.closed {
				c.watchers[w] = struct{}{}
			}
			c.mu.Unlock()
			return w, nil
		}
		floor := c.floor
		c.mu.Unlock()
		// Older than memory: read etcd history up to the ring's floor.
		var err error
		backlog, err = c.history(ctx, rev, floor)
		if err != nil {
			return nil, err
		}
		for _, e := range backlog {
			if !c.sendUnlocked(w, e) {
				return nil, fmt.Errorf("watch from %d: backlog exceeds the watcher buffer", rev)
			}
			rev = e.Rev
		}
		if rev < floor {
			rev = floor
		}
	}
}

func (c *Cache) sendUnlocked(w *Watcher, e *Event) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sendLocked(w, e)
}

// history reads events in (from, to] from etcd with a short-lived watch.
func (c *Cache) history(ctx context.Context, from, to int64) ([]*Event, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := c.cli.Watch(wctx, c.opts.Prefix, clientv3.WithPrefix(), clientv3.WithRev(from+1), clientv3.WithPrevKV(), clientv3.WithProgressNotify())
	// Ask for a progress notice so an empty stretch of history ends promptly
	// instead of at etcd's next periodic notice.
	if err := c.cli.RequestProgress(wctx); err != nil {
		return nil, fmt.Errorf("read history from %d: %w", from, err)
	}
	var out []*Event
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case resp, ok := <-wch:
			if !ok {
				return nil, fmt.Errorf("read history from %d: watch closed", from)
			}
			if err := resp.Err(); err != nil {
				if errors.Is(err, rpctypes.ErrCompacted) {
					return nil, ErrGone
				}
				return nil, fmt.Errorf("read history from %d: %w", from, err)
			}
			for _, ev := range resp.Events {
				if ev.Kv.ModRevision > to {
					return out, nil
				}
				e, err := c.convert(ev)
				if err != nil {
					return nil, fmt.Errorf("read history from %d: %w", from, err)
				}
				out = append(out, e)
			}
			if resp.Header.Revision >= to && (len(resp.Events) == 0 || resp.Events[len(resp.Events)-1].Kv.ModRevision >= to) {
				return out, nil
			}
		}
	}
}

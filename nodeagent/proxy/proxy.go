// Package proxy is the node's service proxy loop (kube-proxy's role): it
// follows Services and EndpointSlices through informers and drives a
// datapath.Dataplane with the desired state of its node. It tracks which
// services an event touches and hands the data plane only those
// (ApplyServices), so a change costs what changed; a whole Apply
// reconciles at start, periodically and after a failure. It coalesces
// bursts of changes and measures network programming latency (change
// seen → kernel written). It owns no kernel state itself.
package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"weir.dev/weir/datapath"
)

// Labels that take a Service away from this proxy, as kube-proxy honours them.
const (
	LabelServiceProxyName = "service.kubernetes.io/service-proxy-name"
	LabelHeadless         = "service.kubernetes.io/headless"
)

// DefaultResyncInterval spaces the whole Applies that catch any drift
// between the kernel and the API (kube-proxy forces a full sync hourly).
const DefaultResyncInterval = 10 * time.Minute

// Config configures a Proxy.
type Config struct {
	NodeName string
	NodeIPs  []netip.Addr
	// MinSyncInterval spaces syncs (kube-proxy's --iptables-min-sync-period);
	// 0 applies as soon as a change is seen.
	MinSyncInterval time.Duration
	// ResyncInterval spaces whole Applies; 0 means DefaultResyncInterval.
	ResyncInterval time.Duration
	Logger         *slog.Logger
	Registerer     prometheus.Registerer
}

// Proxy keeps a Dataplane in step with the API. Run it once.
type Proxy struct {
	c   kubernetes.Interface
	dp  datapath.Dataplane
	cfg Config
	log *slog.Logger

	mu sync.Mutex
	// dirty holds the services changed and not yet applied, with when
	// their first change was seen.
	dirty map[datapath.ServiceKey]time.Time
	// full asks for a whole Apply (start, resync, after a failure).
	full bool
	kick chan struct{}

	latency  prometheus.Histogram
	duration *prometheus.HistogramVec
	syncs    *prometheus.CounterVec
}

// Sync modes, as metric labels.
const (
	modeFull        = "full"
	modeIncremental = "incremental"
)

// New builds a proxy; it does no I/O.
func New(c kubernetes.Interface, dp datapath.Dataplane, cfg Config) (*Proxy, error) {
	if cfg.NodeName == "" {
		return nil, fmt.Errorf("proxy: node name is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = DefaultResyncInterval
	}
	p := &Proxy{c: c, dp: dp, cfg: cfg, log: cfg.Logger, kick: make(chan struct{}, 1),
		dirty: map[datapath.ServiceKey]time.Time{},
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "weir_network_programming_duration_seconds",
			Help: "From a Service or EndpointSlice change seen by the proxy to the kernel state written, per service changed (kube-proxy's network_programming_duration_seconds).",
			// 100µs to ~52s.
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 20),
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "weir_proxy_sync_duration_seconds", Help: "Time the data plane took to apply a sync, by mode (full or incremental).",
			Buckets: prometheus.ExponentialBuckets(0.00001, 2, 24),
		}, []string{"mode"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_proxy_syncs_total", Help: "Data-plane syncs by mode (full or incremental) and result (ok or error).",
		}, []string{"mode", "result"}),
	}
	for _, m := range []prometheus.Collector{p.latency, p.duration, p.syncs} {
		if err := cfg.Registerer.Register(m); err != nil {
			return nil, fmt.Errorf("register proxy metrics: %w", err)
		}
	}
	return p, nil
}

// touch marks services changed now.
func (p *Proxy) touch(keys ...datapath.ServiceKey) {
	now := time.Now()
	p.mu.Lock()
	for _, k := range keys {
		if _, ok := p.dirty[k]; !ok {
			p.dirty[k] = now
		}
	}
	p.mu.Unlock()
	p.wake()
}

func (p *Proxy) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// serviceOf and sliceService name the service an object belongs to; a
// deleted object may come as a tombstone.
func serviceOf(obj any) (datapath.ServiceKey, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	s, ok := obj.(*corev1.Service)
	if !ok {
		return datapath.ServiceKey{}, false
	}
	return datapath.ServiceKey{Namespace: s.Namespace, Name: s.Name}, true
}

func sliceService(obj any) (datapath.ServiceKey, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	sl, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok || sl.Labels[datapath.ServiceNameLabel] == "" {
		return datapath.ServiceKey{}, false
	}
	return datapath.ServiceKey{Namespace: sl.Namespace, Name: sl.Labels[datapath.ServiceNameLabel]}, true
}

// keyed turns an event handler on objects into one on service keys.
func (p *Proxy) keyed(key func(any) (datapath.ServiceKey, bool)) cache.ResourceEventHandlerFuncs {
	one := func(obj any) {
		if k, ok := key(obj); ok {
			p.touch(k)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { one(obj) },
		// A slice relabelled to another service changes both.
		UpdateFunc: func(old, obj any) { one(old); one(obj) },
		DeleteFunc: one,
	}
}

// indexByService indexes EndpointSlices by the service they belong to.
const indexByService = "service"

// Run follows the API and applies until ctx ends.
func (p *Proxy) Run(ctx context.Context) error {
	f := informers.NewSharedInformerFactory(p.c, 0)
	svcInf := f.Core().V1().Services()
	sliceInf := f.Discovery().V1().EndpointSlices()
	if err := sliceInf.Informer().AddIndexers(cache.Indexers{indexByService: func(obj any) ([]string, error) {
		if k, ok := sliceService(obj); ok {
			return []string{k.String()}, nil
		}
		return nil, nil
	}}); err != nil {
		return fmt.Errorf("index endpoint slices: %w", err)
	}
	if _, err := svcInf.Informer().AddEventHandler(p.keyed(serviceOf)); err != nil {
		return err
	}
	if _, err := sliceInf.Informer().AddEventHandler(p.keyed(sliceService)); err != nil {
		return err
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), svcInf.Informer().HasSynced, sliceInf.Informer().HasSynced) {
		return ctx.Err()
	}
	src := &source{node: p.cfg.NodeName, ips: p.cfg.NodeIPs, svcs: svcInf.Lister(), slices: sliceInf.Informer().GetIndexer()}
	// The first sync is whole: it reconciles whatever the kernel holds.
	p.mu.Lock()
	p.full = true
	p.mu.Unlock()
	p.wake()
	var last time.Time
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	resync := time.NewTicker(p.cfg.ResyncInterval)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.kick:
		case <-retry.C:
		case <-resync.C:
			p.mu.Lock()
			p.full = true
			p.mu.Unlock()
		}
		if wait := p.cfg.MinSyncInterval - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		p.mu.Lock()
		dirty, full := p.dirty, p.full
		p.dirty, p.full = map[datapath.ServiceKey]time.Time{}, false
		p.mu.Unlock()
		if !full && len(dirty) == 0 {
			continue
		}
		last = time.Now()
		mode, err := p.sync(ctx, src, dirty, full)
		p.duration.WithLabelValues(mode).Observe(time.Since(last).Seconds())
		if err != nil {
			p.syncs.WithLabelValues(mode, "error").Inc()
			p.log.Error("apply services", slog.String("mode", mode), slog.Int("changed", len(dirty)), slog.Any("error", err))
			// Keep the changes and their times; the retry is whole, as
			// kube-proxy's after a failure, so nothing half-applied stays.
			p.mu.Lock()
			for k, t := range dirty {
				if cur, ok := p.dirty[k]; !ok || t.Before(cur) {
					p.dirty[k] = t
				}
			}
			p.full = true
			p.mu.Unlock()
			retry.Reset(time.Second)
			continue
		}
		p.syncs.WithLabelValues(mode, "ok").Inc()
		now := time.Now()
		for _, t := range dirty {
			p.latency.Observe(now.Sub(t).Seconds())
		}
	}
}

// sync applies the whole state or the dirty services.
func (p *Proxy) sync(ctx context.Context, src *source, dirty map[datapath.ServiceKey]time.Time, full bool) (string, error) {
	if full {
		st, err := src.all()
		if err != nil {
			return modeFull, err
		}
		return modeFull, p.dp.Apply(ctx, st)
	}
	var changed []datapath.Service
	var deleted []datapath.ServiceKey
	for k := range dirty {
		s, err := src.service(k)
		if err != nil {
			return modeIncremental, err
		}
		if s == nil {
			deleted = append(deleted, k)
			continue
		}
		changed = append(changed, *s)
	}
	return modeIncremental, p.dp.ApplyServices(ctx, datapath.NodeInfo{Name: src.node, IPs: src.ips}, changed, deleted)
}

// source reads the desired state from the informers' caches.
type source struct {
	node   string
	ips    []netip.Addr
	svcs   corelisters.ServiceLister
	slices cache.Indexer
}

func (s *source) all() (*datapath.State, error) {
	svcs, err := s.svcs.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var slices []*discoveryv1.EndpointSlice
	for _, o := range s.slices.List() {
		if sl, ok := o.(*discoveryv1.EndpointSlice); ok {
			slices = append(slices, sl)
		}
	}
	return datapath.FromAPI(s.node, s.ips, proxied(svcs), slices), nil
}

// service converts one service with its slices; nil when it is gone or
// not this proxy's to program (then the data plane deletes it).
func (s *source) service(k datapath.ServiceKey) (*datapath.Service, error) {
	svc, err := s.svcs.Services(k.Namespace).Get(k.Name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read service %s: %w", k, err)
	}
	objs, err := s.slices.ByIndex(indexByService, k.String())
	if err != nil {
		return nil, fmt.Errorf("read endpoint slices of %s: %w", k, err)
	}
	slices := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if sl, ok := o.(*discoveryv1.EndpointSlice); ok {
			slices = append(slices, sl)
		}
	}
	st := datapath.FromAPI(s.node, s.ips, proxied([]*corev1.Service{svc}), slices)
	if len(st.Services) == 0 {
		return nil, nil
	}
	return &st.Services[0], nil
}

// proxied drops the Services another proxy owns or that have no ClusterIP.
func proxied(in []*corev1.Service) []*corev1.Service {
	out := make([]*corev1.Service, 0, len(in))
	for _, s := range in {
		if _, other := s.Labels[LabelServiceProxyName]; other {
			continue
		}
		if _, hl := s.Labels[LabelHeadless]; hl {
			continue
		}
		out = append(out, s)
	}
	return out
}

// Package proxy is the node's service proxy loop (kube-proxy's role): it
// follows Services and EndpointSlices through informers and drives a
// datapath.Dataplane with the desired state of its node. It coalesces
// bursts of changes into one Apply and measures network programming
// latency (change seen → kernel written). It owns no kernel state itself.
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
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"weir.dev/weir/datapath"
)

// Labels that take a Service away from this proxy, as kube-proxy honours them.
const (
	LabelServiceProxyName = "service.kubernetes.io/service-proxy-name"
	LabelHeadless         = "service.kubernetes.io/headless"
)

// Config configures a Proxy.
type Config struct {
	NodeName string
	NodeIPs  []netip.Addr
	// MinSyncInterval spaces Applies (kube-proxy's --iptables-min-sync-period);
	// 0 applies as soon as a change is seen.
	MinSyncInterval time.Duration
	Logger          *slog.Logger
	Registerer      prometheus.Registerer
}

// Proxy keeps a Dataplane in step with the API. Run it once.
type Proxy struct {
	c   kubernetes.Interface
	dp  datapath.Dataplane
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	pending time.Time // first change not yet applied (zero: none)
	kick    chan struct{}

	latency *prometheus.HistogramVec
	syncs   *prometheus.CounterVec
}

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
	p := &Proxy{c: c, dp: dp, cfg: cfg, log: cfg.Logger, kick: make(chan struct{}, 1),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "weir_proxy_network_programming_duration_seconds", Help: "From a Service or EndpointSlice change seen to the kernel state written.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 20),
		}, []string{"result"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_proxy_syncs_total", Help: "Dataplane applies by result.",
		}, []string{"result"}),
	}
	for _, m := range []prometheus.Collector{p.latency, p.syncs} {
		if err := cfg.Registerer.Register(m); err != nil {
			return nil, fmt.Errorf("register proxy metrics: %w", err)
		}
	}
	return p, nil
}

func (p *Proxy) changed() {
	p.mu.Lock()
	if p.pending.IsZero() {
		p.pending = time.Now()
	}
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Run follows the API and applies until ctx ends.
func (p *Proxy) Run(ctx context.Context) error {
	f := informers.NewSharedInformerFactory(p.c, 0)
	svcInf := f.Core().V1().Services()
	sliceInf := f.Discovery().V1().EndpointSlices()
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { p.changed() },
		UpdateFunc: func(any, any) { p.changed() },
		DeleteFunc: func(any) { p.changed() },
	}
	if _, err := svcInf.Informer().AddEventHandler(h); err != nil {
		return err
	}
	if _, err := sliceInf.Informer().AddEventHandler(h); err != nil {
		return err
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), svcInf.Informer().HasSynced, sliceInf.Informer().HasSynced) {
		return ctx.Err()
	}
	p.changed() // the first sync reconciles whatever the kernel holds
	var last time.Time
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.kick:
		case <-retry.C:
		}
		if wait := p.cfg.MinSyncInterval - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		p.mu.Lock()
		since := p.pending
		p.pending = time.Time{}
		p.mu.Unlock()
		svcs, err := svcInf.Lister().List(labels.Everything())
		if err != nil {
			return err
		}
		slices, err := sliceInf.Lister().List(labels.Everything())
		if err != nil {
			return err
		}
		st := datapath.FromAPI(p.cfg.NodeName, p.cfg.NodeIPs, proxied(svcs), slices)
		last = time.Now()
		if err := p.dp.Apply(ctx, st); err != nil {
			p.syncs.WithLabelValues("error").Inc()
			p.log.Error("apply services", slog.Any("error", err), slog.Int("services", len(st.Services)))
			p.mu.Lock()
			if p.pending.IsZero() || since.Before(p.pending) {
				p.pending = since
			}
			p.mu.Unlock()
			retry.Reset(time.Second)
			continue
		}
		p.syncs.WithLabelValues("ok").Inc()
		if !since.IsZero() {
			p.latency.WithLabelValues("ok").Observe(time.Since(since).Seconds())
		}
	}
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

var _ = discoveryv1.LabelServiceName

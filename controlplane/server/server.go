// Package server assembles a weir control-plane process: etcd (embedded or
// external), the shared PKI, the API server on every listen address, and
// the singleton loops under leader election. It owns process wiring only;
// behaviour lives in the packages it calls.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"weir.dev/weir/controlplane/apiserver"
	"weir.dev/weir/controlplane/auth"
	"weir.dev/weir/controlplane/leader"
	"weir.dev/weir/controlplane/storage"
)

// Config is a server's configuration; zero values take the defaults.
type Config struct {
	DataDir string
	// Listen addresses (host:port) served over HTTPS; every host is in the
	// serving certificate. Default 127.0.0.1:6443.
	Listen []string
	// EtcdEndpoints selects an external etcd cluster; empty embeds one.
	EtcdEndpoints []string
	// EtcdClientAddr and EtcdPeerAddr are the embedded etcd's addresses
	// (host:port); port 0 picks free ports. Default 127.0.0.1:2379 and :2380.
	EtcdClientAddr string
	EtcdPeerAddr   string
	ClusterCIDR    string // default 10.244.0.0/16
	NodeCIDRBits   int    // default 24
	ServiceCIDR    string // default 10.96.0.0/12
	NodePortRange  string // default 30000-32767
	// Identity names this server in the leader election (default host name
	// and first listen address).
	Identity string
	// LeaseTTL is the election session TTL in seconds (default 15).
	LeaseTTL int
	// CompactionInterval is how often the leader compacts etcd history
	// (default 5 min). Each pass compacts to the revision seen one interval
	// earlier, as kube-apiserver does, so a watch may resume from anything
	// newer than one interval.
	CompactionInterval time.Duration
	// Loops run on the elected leader only (scheduler, controllers).
	Loops  []Loop
	Logger *slog.Logger
	// Ready is closed once the server serves on every address.
	Ready chan<- *Info
}

// Loop is a singleton control loop run under leadership with an admin
// client; it returns when ctx ends. reg is a registry for the loop's
// metrics, fresh for each leadership term and served on /metrics while
// the term lasts.
type Loop struct {
	Name string
	Run  func(ctx context.Context, c kubernetes.Interface, cfg *rest.Config, log *slog.Logger, reg prometheus.Registerer) error
}

// termGatherer serves the metrics of the current leadership term's loops;
// each term registers its loops' collectors in a registry of its own, so
// regaining leadership never collides with an earlier term's collectors.
type termGatherer struct {
	cur atomic.Pointer[prometheus.Registry]
}

func (g *termGatherer) Gather() ([]*dto.MetricFamily, error) {
	if r := g.cur.Load(); r != nil {
		return r.Gather()
	}
	return nil, nil
}

// Info tells a caller (weir up, tests) what the running server serves.
type Info struct {
	URLs           []string
	AdminToken     string
	BootstrapToken string
	CA             *auth.CA
	Kubeconfig     string
	Elector        *leader.Elector
	EtcdEndpoints  []string
	API            *apiserver.Server
	Store          *storage.Store
}

func (c *Config) defaults() error {
	if c.DataDir == "" {
		c.DataDir = "/var/lib/weir"
	}
	if len(c.Listen) == 0 {
		c.Listen = []string{"127.0.0.1:6443"}
	}
	if c.EtcdClientAddr == "" {
		c.EtcdClientAddr = "127.0.0.1:2379"
	}
	if c.EtcdPeerAddr == "" {
		c.EtcdPeerAddr = "127.0.0.1:2380"
	}
	if c.ClusterCIDR == "" {
		c.ClusterCIDR = "10.244.0.0/16"
	}
	if c.NodeCIDRBits == 0 {
		c.NodeCIDRBits = 24
	}
	if c.ServiceCIDR == "" {
		c.ServiceCIDR = "10.96.0.0/12"
	}
	if c.NodePortRange == "" {
		c.NodePortRange = "30000-32767"
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 15
	}
	if c.CompactionInterval == 0 {
		c.CompactionInterval = 5 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Identity == "" {
		h, _ := os.Hostname()
		c.Identity = h + "/" + c.Listen[0]
	}
	for _, l := range c.Listen {
		if _, _, err := net.SplitHostPort(l); err != nil {
			return fmt.Errorf("--listen %q: %w", l, err)
		}
	}
	return nil
}

func parsePortRange(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("--service-node-port-range %q: want LOW-HIGH within 1-65535", s)
	}
	return lo, hi, nil
}

// Run serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	log := cfg.Logger
	clusterCIDR, err := netip.ParsePrefix(cfg.ClusterCIDR)
	if err != nil {
		return fmt.Errorf("--cluster-cidr: %w", err)
	}
	serviceCIDR, err := netip.ParsePrefix(cfg.ServiceCIDR)
	if err != nil {
		return fmt.Errorf("--service-cidr: %w", err)
	}
	npLo, npHi, err := parsePortRange(cfg.NodePortRange)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}

	cli, endpoints, closeEtcd, err := openEtcd(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeEtcd()

	pki, err := loadPKI(ctx, cli, filepath.Join(cfg.DataDir, "pki"))
	if err != nil {
		return err
	}
	authn, err := auth.NewAuthenticator(pki.ca, pki.adminToken, pki.bootstrapToken)
	if err != nil {
		return fmt.Errorf("build authenticator: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	etcdLatency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "weir_etcd_request_duration_seconds", Help: "etcd round trips by operation.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	}, []string{"operation"})
	reg.MustRegister(etcdLatency)
	store := storage.New(cli, etcdLatency)

	terms := &termGatherer{}
	api, err := apiserver.New(apiserver.Config{
		Store: store, Logger: log, Authn: authn, CA: pki.ca,
		ServiceCIDR: serviceCIDR, ClusterCIDR: clusterCIDR, NodeCIDRBits: cfg.NodeCIDRBits,
		NodePortMin: npLo, NodePortMax: npHi, Registerer: reg,
		Gatherer: prometheus.Gatherers{reg, terms},
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := api.Run(ctx); err != nil {
			log.Error("watch caches stopped", slog.Any("error", err))
		}
	}()
	if err := api.WaitReady(ctx); err != nil {
		return err
	}
	if err := api.EnsureNamespaces(ctx); err != nil {
		return err
	}

	hosts := []string{"localhost", "127.0.0.1"}
	for _, l := range cfg.Listen {
		h, _, _ := net.SplitHostPort(l)
		if h != "" && h != "0.0.0.0" && h != "::" {
			hosts = append(hosts, h)
		}
	}
	if hn, err := os.Hostname(); err == nil {
		hosts = append(hosts, hn)
	}
	serving, _, _, err := pki.ca.IssueServing(hosts)
	if err != nil {
		return fmt.Errorf("issue serving certificate: %w", err)
	}
	tlsCfg := pki.ca.ServerTLSConfig(serving)
	tlsCfg.NextProtos = []string{"h2", "http/1.1"}

	var urls []string
	errc := make(chan error, len(cfg.Listen))
	var servers []*http.Server
	for _, l := range cfg.Listen {
		ln, err := net.Listen("tcp", l)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", l, err)
		}
		srv := &http.Server{Handler: api, TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
		servers = append(servers, srv)
		host, port, _ := net.SplitHostPort(ln.Addr().String())
		if h, _, _ := net.SplitHostPort(l); h == "0.0.0.0" || h == "" {
			host = "127.0.0.1"
		}
		urls = append(urls, "https://"+net.JoinHostPort(host, port))
		go func() { errc <- srv.Serve(tls.NewListener(ln, tlsCfg)) }()
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		for _, s := range servers {
			_ = s.Shutdown(sctx)
		}
	}()

	kubeconfig := filepath.Join(cfg.DataDir, "admin.kubeconfig")
	if err := auth.WriteKubeconfig(kubeconfig, urls[0], pki.ca.CertPEM(), "weir", auth.AdminUser, pki.adminToken); err != nil {
		return fmt.Errorf("write admin kubeconfig: %w", err)
	}
	restCfg := &rest.Config{
		Host: urls[0], BearerToken: pki.adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: pki.ca.CertPEM()},
		QPS:             -1, UserAgent: "weir-controllers",
	}
	kc, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("build loopback client: %w", err)
	}

	el, err := leader.New(cli, cfg.Identity, cfg.LeaseTTL, log)
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = el.Run(ctx, func(lctx context.Context) {
			termReg := prometheus.NewRegistry()
			terms.cur.Store(termReg)
			runLoops(lctx, cfg, store, kc, restCfg, log, termReg)
		})
	}()
	log.Info("serving", slog.Any("urls", urls), slog.String("kubeconfig", kubeconfig), slog.Any("etcd", endpoints))
	if cfg.Ready != nil {
		cfg.Ready <- &Info{URLs: urls, AdminToken: pki.adminToken, BootstrapToken: pki.bootstrapToken, CA: pki.ca,
			Kubeconfig: kubeconfig, Elector: el, EtcdEndpoints: endpoints, API: api, Store: store}
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve: %w", err)
	}
}

// runLoops runs the singleton loops and the compactor while leading.
func runLoops(ctx context.Context, cfg Config, store *storage.Store, kc kubernetes.Interface, rc *rest.Config, log *slog.Logger, reg prometheus.Registerer) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		compact(ctx, store, cfg.CompactionInterval, log)
	}()
	for _, l := range cfg.Loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := l.Run(ctx, kc, rc, log.With("loop", l.Name), reg); err != nil && ctx.Err() == nil {
					log.Error("loop failed; restarting", slog.String("loop", l.Name), slog.Any("error", err))
					select {
					case <-ctx.Done():
					case <-time.After(time.Second):
					}
				}
			}
		}()
	}
	wg.Wait()
}

// compact discards etcd history older than one interval, as
// kube-apiserver's compactor does, so watches may resume from anything
// newer and older resumes get 410.
func compact(ctx context.Context, store *storage.Store, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rev, err := store.Revision(ctx)
		if err != nil {
			log.Warn("read revision for compaction", slog.Any("error", err))
			continue
		}
		if last > 0 {
			if err := store.Compact(ctx, last); err != nil {
				log.Warn("compact", slog.Any("error", err))
			}
		}
		last = rev
	}
}

// openEtcd connects to the external cluster or starts the embedded one.
func openEtcd(ctx context.Context, cfg Config, log *slog.Logger) (*clientv3.Client, []string, func(), error) {
	if len(cfg.EtcdEndpoints) > 0 {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints: cfg.EtcdEndpoints, DialTimeout: 5 * time.Second, Context: ctx,
			DialKeepAliveTime: 5 * time.Second, DialKeepAliveTimeout: 3 * time.Second,
			Logger: zap.NewNop(),
		})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("connect to etcd %v: %w", cfg.EtcdEndpoints, err)
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := cli.Get(sctx, "/weir/ping"); err != nil {
			cli.Close()
			return nil, nil, nil, fmt.Errorf("reach etcd %v: %w", cfg.EtcdEndpoints, err)
		}
		return cli, cfg.EtcdEndpoints, func() { cli.Close() }, nil
	}
	ec := embed.NewConfig()
	ec.Dir = filepath.Join(cfg.DataDir, "etcd")
	ec.Name = "weir"
	ec.LogLevel = "error"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cu, err := url.Parse("http://" + cfg.EtcdClientAddr)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("etcd client address: %w", err)
	}
	pu, err := url.Parse("http://" + cfg.EtcdPeerAddr)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("etcd peer address: %w", err)
	}
	cu, pu = freePort(cu), freePort(pu)
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	// Data written before a crash is durable; weir's history window is
	// short, so a smaller snapshot count keeps memory low.
	ec.SnapshotCount = 10000
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, nil, nil, errors.New("embedded etcd did not become ready in 60 s")
	case <-ctx.Done():
		e.Close()
		return nil, nil, nil, ctx.Err()
	}
	log.Info("embedded etcd ready", slog.String("dir", ec.Dir), slog.String("client_url", cu.String()))
	cli := v3client.New(e.Server)
	return cli, []string{cu.String()}, func() { cli.Close(); e.Close() }, nil
}

// freePort replaces port 0 with a free loopback port, since etcd
// advertises the configured URL verbatim.
func freePort(u *url.URL) *url.URL {
	if u.Port() != "0" {
		return u
	}
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		return u
	}
	defer ln.Close()
	out := *u
	out.Host = ln.Addr().String()
	return &out
}

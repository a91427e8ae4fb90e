// Package apiserver serves weir's objects at Kubernetes' REST paths: get,
// list, watch, create, update, patch, delete and deletecollection, with the
// subresources the served kinds have, discovery, authentication and
// authorization, defaulting, validation and allocation. It stores objects
// through controlplane/storage and fans watches out through
// controlplane/watchcache; it runs no controllers.
package apiserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"

	"weir.dev/weir/controlplane/auth"
	"weir.dev/weir/controlplane/resources"
	"weir.dev/weir/controlplane/storage"
	"weir.dev/weir/controlplane/watchcache"
)

// Config holds what the server is built from.
type Config struct {
	Store  *storage.Store
	Logger *slog.Logger
	// Authn identifies the caller; nil serves every request as an admin
	// (only for in-process tests of pure API behaviour).
	Authn *auth.Authenticator
	// CA signs node client certificates requested through CSRs.
	CA           *auth.CA
	ServiceCIDR  netip.Prefix
	NodePortMin  int
	NodePortMax  int
	ClusterCIDR  netip.Prefix
	NodeCIDRBits int
	Registerer   prometheus.Registerer
	// Gatherer, if set, is what /metrics serves (default: Registerer when
	// it is also a Gatherer).
	Gatherer prometheus.Gatherer
	Version  string
	// WatchBuffer is each watcher's queue length (see watchcache.Options).
	WatchBuffer int
	// Ready reports readiness for /readyz beyond the caches' own.
	Ready func() error
}

// Server is the API server's HTTP handler. Safe for concurrent use.
type Server struct {
	cfg    Config
	store  *storage.Store
	log    *slog.Logger
	alloc  *Allocator
	caches map[*resources.Resource]*watchcache.Cache
	m      *metrics
	mux    *http.ServeMux

	namespaces namespaceTracker
	// agents reaches node agents for pods/log and pods/exec (nil
	// without a CA).
	agents *http.Transport
}

// New builds a server; Run starts its watch caches.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("apiserver: no store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if !cfg.ServiceCIDR.IsValid() {
		cfg.ServiceCIDR = netip.MustParsePrefix("10.96.0.0/12")
	}
	if !cfg.ClusterCIDR.IsValid() {
		cfg.ClusterCIDR = netip.MustParsePrefix("10.244.0.0/16")
	}
	if cfg.NodeCIDRBits == 0 {
		cfg.NodeCIDRBits = 24
	}
	if cfg.NodePortMin == 0 {
		cfg.NodePortMin, cfg.NodePortMax = 30000, 32767
	}
	if cfg.NodeCIDRBits < cfg.ClusterCIDR.Bits() || cfg.NodeCIDRBits > 30 {
		return nil, fmt.Errorf("apiserver: node CIDR size /%d does not fit cluster CIDR %s", cfg.NodeCIDRBits, cfg.ClusterCIDR)
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	if cfg.Version == "" {
		cfg.Version = "v1.37.0-weir"
	}
	s := &Server{
		cfg:   cfg,
		store: cfg.Store,
		log:   cfg.Logger,
		alloc: &Allocator{
			ServiceCIDR: cfg.ServiceCIDR, NodePortMin: cfg.NodePortMin, NodePortMax: cfg.NodePortMax,
			ClusterCIDR: cfg.ClusterCIDR, NodeCIDRBits: cfg.NodeCIDRBits, store: cfg.Store,
		},
		caches: map[*resources.Resource]*watchcache.Cache{},
	}
	s.namespaces.terminating = map[string]bool{}
	if cfg.CA != nil {
		t, err := newAgentTransport(cfg.CA)
		if err != nil {
			return nil, fmt.Errorf("apiserver: %w", err)
		}
		s.agents = t
	}
	m, err := newMetrics(cfg.Registerer, cfg.Gatherer)
	if err != nil {
		return nil, err
	}
	s.m = m
	for _, r := range resources.All() {
		res := r
		s.caches[r] = watchcache.New(cfg.Store.Client(), watchcache.Options{
			Prefix: r.KeyPrefix(),
			Decode: func(v []byte, rev int64) (runtime.Object, error) { return decodeStored(res, v, rev) },
			Attrs:  objectAttrs,
			Buffer: cfg.WatchBuffer,
			Logger: cfg.Logger,
			OnOverflow: func() {
				s.m.watchOverflows.WithLabelValues(res.Plural).Inc()
			},
		})
	}
	s.routes()
	return s, nil
}

// Run follows etcd for every resource until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, len(s.caches))
	for _, c := range s.caches {
		go func() { errc <- c.Run(ctx) }()
	}
	go s.trackNamespaces(ctx)
	var first error
	for range s.caches {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// WaitReady blocks until every watch cache follows etcd.
func (s *Server) WaitReady(ctx context.Context) error {
	for _, c := range s.caches {
		if err := c.WaitReady(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Cache returns the watch cache of a resource, for in-process controllers.
func (s *Server) Cache(r *resources.Resource) *watchcache.Cache { return s.caches[r] }

func (s *Server) routes() {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", s.healthz)
	mux.HandleFunc("/livez", s.healthz)
	mux.HandleFunc("/readyz", s.readyz)
	mux.HandleFunc("/version", s.version)
	mux.HandleFunc("/api", s.discoveryAPI)
	mux.HandleFunc("/apis", s.discoveryAPIs)
	mux.HandleFunc("/", s.serveResource)
	s.mux = mux
}

type ctxKey int

const userKey ctxKey = 0

// userFrom returns the authenticated caller.
func userFrom(ctx context.Context) auth.User {
	u, _ := ctx.Value(userKey).(auth.User)
	return u
}

var adminUser = auth.User{Name: "admin", Groups: []string{"system:masters", "system:authenticated"}}

// ServeHTTP authenticates, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz", "/livez", "/readyz", "/version":
		// Probes and version are open, as kube-apiserver's default RBAC leaves them.
		s.mux.ServeHTTP(w, r)
		return
	}
	u := adminUser
	if s.cfg.Authn != nil {
		var ok bool
		if u, ok = s.cfg.Authn.Authenticate(r); !ok {
			s.m.requests.WithLabelValues("", "", "401").Inc()
			writeError(w, apierrors.NewUnauthorized("Unauthorized"))
			return
		}
	}
	s.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey, u)))
}

// statusRecorder captures the response code for metrics.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Hijack hands pods/exec the connection to upgrade, recording the 101
// the upgraded stream answered with.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("apiserver: the connection cannot be upgraded (HTTP/2)")
	}
	if r.code == 0 {
		r.code = http.StatusSwitchingProtocols
	}
	return h.Hijack()
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) serveResource(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/apis/") {
		if s.serveDiscoveryPath(w, r) {
			return
		}
	}
	if r.URL.Path == "/metrics" {
		s.metricsHandler(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/openapi/") {
		s.openapi(w, r)
		return
	}
	q := r.URL.Query()
	ri, ok := parseResourcePath(r.Method, r.URL.Path, q)
	if !ok || (ri.Subresource != "" && !ri.Res.HasSubresource(ri.Subresource)) {
		writeError(w, notFoundPath())
		return
	}
	if ri.Subresource == "exec" {
		// A WebSocket exec arrives as a GET; it is authorized as the
		// create it is, as kube-apiserver does since 1.35.
		ri.Verb = "create"
	}
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	// A create of a Node or Lease is authorized once its name is read
	// from the body (createFromRequest).
	deferAuthz := ri.Verb == "create" && ri.Subresource == "" && (ri.Res.Plural == "nodes" || ri.Res.Plural == "leases")
	if err := s.authorize(r.Context(), ri); !deferAuthz && err != nil {
		writeError(rec, err)
	} else {
		s.handle(rec, r, ri)
	}
	code := strconv.Itoa(rec.code)
	s.m.requests.WithLabelValues(ri.Verb, ri.Res.Plural, code).Inc()
	if ri.Verb != "watch" {
		s.m.latency.WithLabelValues(ri.Verb, ri.Res.Plural).Observe(time.Since(start).Seconds())
	}
}

func (s *Server) authorize(ctx context.Context, ri requestInfo) error {
	u := userFrom(ctx)
	attrs := auth.Attributes{
		User: u, Verb: ri.Verb, APIGroup: ri.Res.Group, Resource: ri.Res.Plural,
		Subresource: ri.Subresource, Namespace: ri.Namespace, Name: ri.Name,
	}
	d, reason, err := auth.Authorize(ctx, graph{s}, attrs)
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("authorize: %w", err))
	}
	if d != auth.Allow {
		res := ri.Res.Plural
		if ri.Subresource != "" {
			res += "/" + ri.Subresource
		}
		msg := fmt.Sprintf("User %q cannot %s resource %q in API group %q", u.Name, ri.Verb, res, ri.Res.Group)
		if ri.Namespace != "" {
			msg += fmt.Sprintf(" in the namespace %q", ri.Namespace)
		}
		if reason != "" {
			msg += ": " + reason
		}
		return apierrors.NewForbidden(ri.Res.GroupResource(), ri.Name, fmt.Errorf("%s", msg))
	}
	return nil
}

// Package cluster starts real weir servers in-process for tests: each with
// its own data dir, loopback ports and embedded etcd (or the external etcd
// it is given), torn down in t.Cleanup. It owns nothing outside the test's
// temporary directories.
package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"weir.dev/weir/controlplane/server"
)

// Server is one running weir server.
type Server struct {
	*server.Info
	URL    string
	cancel context.CancelFunc
	done   chan error
}

// Option adjusts the server configuration.
type Option func(*server.Config)

// WithEtcd uses an external etcd cluster.
func WithEtcd(endpoints []string) Option {
	return func(c *server.Config) { c.EtcdEndpoints = endpoints }
}

// WithLoops sets the singleton loops (default: server.DefaultLoops()).
func WithLoops(l []server.Loop) Option { return func(c *server.Config) { c.Loops = l } }

// WithConfig applies an arbitrary change.
func WithConfig(f func(*server.Config)) Option { return Option(f) }

// Start runs a server and waits until it serves (deadline 60 s).
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	ready := make(chan *server.Info, 1)
	cfg := server.Config{
		DataDir:        t.TempDir(),
		Listen:         []string{"127.0.0.1:0"},
		EtcdClientAddr: "127.0.0.1:0",
		EtcdPeerAddr:   "127.0.0.1:0",
		LeaseTTL:       2,
		Loops:          server.DefaultLoops(),
		Ready:          ready,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if os.Getenv("WEIR_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- server.Run(ctx, cfg) }()
	select {
	case info := <-ready:
		s.Info = info
		s.URL = info.URLs[0]
	case err := <-s.done:
		cancel()
		t.Fatalf("weir server did not start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("weir server did not start in 60 s")
	}
	t.Cleanup(s.Stop)
	return s
}

// Stop shuts the server down and waits for it; idempotent.
func (s *Server) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
	}
	s.cancel = nil
}

// RESTConfig is an admin client configuration. contentType "" keeps
// client-go's default (protobuf request bodies).
func (s *Server) RESTConfig(contentType string) *rest.Config {
	return &rest.Config{
		Host: s.URL, BearerToken: s.AdminToken, ContentConfig: rest.ContentConfig{ContentType: contentType},
		TLSClientConfig: rest.TLSClientConfig{CAData: s.CA.CertPEM()},
		QPS:             -1,
	}
}

// Client is an admin clientset sending JSON.
func (s *Server) Client(t testing.TB) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(s.RESTConfig("application/json"))
	if err != nil {
		t.Fatalf("build client: %v", err)
	}
	return c
}

// HTTPClient trusts the cluster CA and presents certs if given.
func (s *Server) HTTPClient(certs ...tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CA.CertPEM())
	return &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}},
	}
}

// Eventually polls cond every 50 ms until it holds or the deadline passes.
func Eventually(t testing.TB, deadline time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	end := time.Now().Add(deadline)
	var last error
	for time.Now().Before(end) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not true within %s (last error: %v)", what, deadline, last)
}

// LoopsWithout is server.DefaultLoops() minus the named loops, for tests
// that play a part themselves (the scheduler, say) and must not race it.
func LoopsWithout(names ...string) []server.Loop {
	var out []server.Loop
	for _, l := range server.DefaultLoops() {
		skip := false
		for _, n := range names {
			skip = skip || l.Name == n
		}
		if !skip {
			out = append(out, l)
		}
	}
	return out
}

// APILoops are the loops for tests of API and CLI behaviour: the garbage
// collector and the namespace controller, without the scheduler and the
// workload controllers, which write status behind a test's back.
func APILoops() []server.Loop {
	return LoopsWithout("scheduler", "replicaset", "deployment", "endpointslice")
}

package agentserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"weir.dev/weir/controlplane/auth"
	"weir.dev/weir/nodeagent/runtime"
)

// DefaultPort is the kubelet's port, which the agent takes too.
const DefaultPort = 10250

// Pods finds the pods bound to this node by name.
type Pods interface {
	Pod(namespace, name string) (*corev1.Pod, bool)
}

// Runtime runs exec'd processes and locates logs (*runtime.Runtime).
type Runtime interface {
	Exec(ctx context.Context, pod *corev1.Pod, container string, cmd []string, sio runtime.ExecIO) (int, error)
	ContainerLog(ctx context.Context, pod *corev1.Pod, container string, previous bool) (runtime.LogFile, error)
}

// Config configures a Server.
type Config struct {
	// Addr is host:port to listen on.
	Addr string
	// Serving is the agent's serving certificate.
	Serving tls.Certificate
	// ClientCAs verifies client certificates (the cluster CA).
	ClientCAs *x509.CertPool
	Pods      Pods
	Runtime   Runtime
	Logger    *slog.Logger
}

// Server serves the agent's endpoints. Safe for concurrent use.
type Server struct {
	cfg Config
	mux *http.ServeMux
}

// New validates cfg; it does no I/O.
func New(cfg Config) (*Server, error) {
	if cfg.Pods == nil || cfg.Runtime == nil {
		return nil, errors.New("agentserver: pods and runtime are required")
	}
	if cfg.ClientCAs == nil {
		return nil, errors.New("agentserver: no client CA")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.serveLogs)
	s.mux.HandleFunc("GET /exec/{namespace}/{pod}/{container}", s.serveExec)
	s.mux.HandleFunc("POST /exec/{namespace}/{pod}/{container}", s.serveExec)
	return s, nil
}

// TLSConfig is the server side of the agent's TLS: its certificate, and
// client certificates verified against the cluster CA when given (a
// request without one is answered 401 rather than failing the handshake).
// HTTP/1.1 only: the streaming protocols upgrade the connection.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{s.cfg.Serving},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    s.cfg.ClientCAs,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}
}

// Run listens on cfg.Addr and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("agentserver: listen on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s, TLSConfig: s.TLSConfig(), ReadHeaderTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelDebug)}
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	s.cfg.Logger.Info("agent server listening", slog.String("addr", ln.Addr().String()))
	select {
	case err := <-errc:
		return fmt.Errorf("agentserver: serve: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		// Hijacked streams (exec) are not tracked by Shutdown; they end
		// with their processes or their clients.
		return nil
	}
}

// ServeHTTP authenticates and authorizes the caller, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := authorize(r); err != nil {
		writeStatus(w, err)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// authorize admits the API server's kubelet client and admins: the agent
// serves nothing to anyone else, nodes included (a node must not read
// another node's pods' logs).
func authorize(r *http.Request) error {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return apierrors.NewUnauthorized("Unauthorized: a client certificate signed by the cluster CA is required")
	}
	leaf := r.TLS.VerifiedChains[0][0]
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return apierrors.NewUnauthorized("Unauthorized: the certificate is not a client certificate")
	}
	name, groups := leaf.Subject.CommonName, leaf.Subject.Organization
	if name == auth.KubeletClientUser || slices.Contains(groups, auth.MastersGroup) {
		return nil
	}
	return apierrors.NewForbidden(corev1.Resource("nodes"), "proxy",
		fmt.Errorf("user %q (groups %s) may not use the node agent's API", name, strings.Join(groups, ",")))
}

// pod resolves the path's pod and container; the container must be in the
// pod's spec (init containers included).
func (s *Server) pod(r *http.Request) (*corev1.Pod, string, error) {
	ns, name, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	pod, ok := s.cfg.Pods.Pod(ns, name)
	if !ok {
		return nil, "", apierrors.NewNotFound(corev1.Resource("pods"), name)
	}
	if !HasContainer(pod, container) {
		return nil, "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", container, name))
	}
	return pod, container, nil
}

// HasContainer reports whether pod has a container or init container name.
func HasContainer(pod *corev1.Pod, name string) bool {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if cs[i].Name == name {
				return true
			}
		}
	}
	return false
}

// writeStatus writes err as a Kubernetes Status, as the kubelet answers.
func writeStatus(w http.ResponseWriter, err error) {
	var se apierrors.APIStatus
	if !errors.As(err, &se) {
		se = apierrors.NewInternalError(err)
	}
	st := se.Status()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(int(st.Code))
	_ = jsonEncode(w, statusObject(st))
}

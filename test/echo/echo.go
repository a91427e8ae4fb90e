package echo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config says where the server listens and what it calls itself.
type Config struct {
	// Hostname is reported by GET /; os.Hostname() when empty.
	Hostname string
	// HTTPAddr, TCPAddr and UDPAddr default to :8080, :9000 and :9001;
	// "-" disables one.
	HTTPAddr, TCPAddr, UDPAddr string
	// Logger receives connection errors; discarded when nil.
	Logger *slog.Logger
}

// Reply is what GET / (and a UDP "whoami") reports.
type Reply struct {
	Hostname string `json:"hostname"`
	Client   string `json:"client"`
}

func (r Reply) String() string { return "hostname=" + r.Hostname + " client=" + r.Client + "\n" }

// ParseReply parses the text form of a Reply.
func ParseReply(s string) (Reply, error) {
	var r Reply
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "hostname":
			r.Hostname = v
		case "client":
			r.Client = v
		}
	}
	if r.Hostname == "" || r.Client == "" {
		return r, fmt.Errorf("echo: not a reply: %q", s)
	}
	return r, nil
}

// Whoami is the UDP payload answered with a Reply instead of an echo.
const Whoami = "whoami"

// Server is a listening echo server. Its methods are safe for concurrent
// use.
type Server struct {
	hostname string
	log      *slog.Logger
	ready    atomic.Bool

	httpLn, tcpLn net.Listener
	udp           net.PacketConn
	srv           *http.Server

	wg        sync.WaitGroup
	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	closeOnce sync.Once
}

// Listen binds the server's sockets; it starts ready. Serve answers on
// them.
func Listen(cfg Config) (*Server, error) {
	s := &Server{hostname: cfg.Hostname, log: cfg.Logger, conns: map[net.Conn]struct{}{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("echo: hostname: %w", err)
		}
		s.hostname = h
	}
	s.ready.Store(true)
	var err error
	if a := orDefault(cfg.HTTPAddr, ":8080"); a != "-" {
		if s.httpLn, err = net.Listen("tcp", a); err != nil {
			return nil, fmt.Errorf("echo: %w", err)
		}
	}
	if a := orDefault(cfg.TCPAddr, ":9000"); a != "-" {
		if s.tcpLn, err = net.Listen("tcp", a); err != nil {
			s.Close()
			return nil, fmt.Errorf("echo: %w", err)
		}
	}
	if a := orDefault(cfg.UDPAddr, ":9001"); a != "-" {
		if s.udp, err = net.ListenPacket("udp", a); err != nil {
			s.Close()
			return nil, fmt.Errorf("echo: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handleRoot)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("/set-ready", s.handleSetReady)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	return s, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// HTTPAddr, TCPAddr and UDPAddr are the bound addresses (nil when disabled).
func (s *Server) HTTPAddr() net.Addr { return addrOf(s.httpLn) }
func (s *Server) TCPAddr() net.Addr  { return addrOf(s.tcpLn) }
func (s *Server) UDPAddr() net.Addr {
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}

func addrOf(l net.Listener) net.Addr {
	if l == nil {
		return nil
	}
	return l.Addr()
}

// Hostname is the name the server reports.
func (s *Server) Hostname() string { return s.hostname }

// SetReady changes what /healthz answers.
func (s *Server) SetReady(v bool) { s.ready.Store(v) }

// Ready reports readiness.
func (s *Server) Ready() bool { return s.ready.Load() }

// Serve answers until ctx ends, then closes every socket and open
// connection and returns nil; an error means a listener failed.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 3)
	if s.httpLn != nil {
		s.wg.Go(func() {
			if err := s.srv.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("echo: http: %w", err)
			}
		})
	}
	if s.tcpLn != nil {
		s.wg.Go(func() {
			if err := s.serveTCP(); err != nil {
				errc <- err
			}
		})
	}
	if s.udp != nil {
		s.wg.Go(func() {
			if err := s.serveUDP(); err != nil {
				errc <- err
			}
		})
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.Close()
	s.wg.Wait()
	return err
}

// Close closes every socket and open connection. Idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.srv != nil {
			s.srv.Close() // closes httpLn and HTTP connections
		} else if s.httpLn != nil {
			s.httpLn.Close()
		}
		if s.tcpLn != nil {
			s.tcpLn.Close()
		}
		if s.udp != nil {
			s.udp.Close()
		}
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.conns = nil
		s.mu.Unlock()
	})
	return nil
}

func (s *Server) closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns == nil
}

func (s *Server) serveTCP() error {
	for {
		c, err := s.tcpLn.Accept()
		if err != nil {
			if s.closed() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("echo: tcp accept: %w", err)
		}
		s.mu.Lock()
		if s.conns == nil {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			if _, err := io.Copy(c, c); err != nil && !s.closed() {
				s.log.Debug("tcp echo ended", "client", c.RemoteAddr().String(), slog.Any("error", err))
			}
		})
	}
}

func (s *Server) serveUDP() error {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := s.udp.ReadFrom(buf)
		if err != nil {
			if s.closed() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("echo: udp read: %w", err)
		}
		out := buf[:n]
		if string(out) == Whoami {
			out = []byte(Reply{s.hostname, from.String()}.String())
		}
		if _, err := s.udp.WriteTo(out, from); err != nil {
			s.log.Debug("udp echo reply failed", "client", from.String(), slog.Any("error", err))
		}
	}
}

func (s *Server) handleRoot(w http.ResponseWriter, r *http.Request) {
	rep := Reply{Hostname: s.hostname, Client: r.RemoteAddr}
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(rep)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, rep.String())
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ok\n")
}

func (s *Server) handleSetReady(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Query().Get("v") {
	case "1":
		s.ready.Store(true)
	case "0":
		s.ready.Store(false)
	default:
		http.Error(w, "want v=0 or v=1", http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "ready=%t\n", s.ready.Load())
}

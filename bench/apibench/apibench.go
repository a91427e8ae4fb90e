// Package apibench measures the control plane: creates per second with
// concurrent clients, watch delivery latency to many concurrent watchers,
// and the server's resident memory idle and holding many objects. It runs
// the real `weir server` binary as a separate process so the memory figure
// is the server's alone, and drives it over HTTPS on loopback.
package apibench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options select the sizes of a run.
type Options struct {
	Binary   string // path to bin/weir
	Pods     int    // pods to create (10,000)
	Clients  int    // concurrent creating clients (64)
	Watchers int    // concurrent watchers (1,000)
	Events   int    // events each watcher receives (200)
	EventGap time.Duration
	WorkDir  string
	Cap      time.Duration // whole-run time cap
}

// Result is one run's figures.
type Result struct {
	Machine          string        `json:"machine"`
	Kernel           string        `json:"kernel"`
	Cores            int           `json:"cores"`
	Etcd             string        `json:"etcd"`
	Pods             int           `json:"pods"`
	Clients          int           `json:"clients"`
	CreateSeconds    float64       `json:"create_seconds"`
	CreatesPerSecond float64       `json:"creates_per_second"`
	CreateErrors     int64         `json:"create_errors"`
	Watchers         int           `json:"watchers"`
	WatchEvents      int           `json:"watch_events_per_watcher"`
	WatchDeliveries  int           `json:"watch_deliveries"`
	WatchP50Millis   float64       `json:"watch_p50_ms"`
	WatchP99Millis   float64       `json:"watch_p99_ms"`
	WatchMaxMillis   float64       `json:"watch_max_ms"`
	IdleRSSMiB       float64       `json:"idle_rss_mib"`
	LoadedRSSMiB     float64       `json:"rss_with_pods_mib"`
	Notes            []string      `json:"notes,omitempty"`
	Elapsed          time.Duration `json:"elapsed_ns"`
}

type server struct {
	cmd    *exec.Cmd
	url    string
	token  string
	client *http.Client
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func startServer(ctx context.Context, bin, dir string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.CommandContext(ctx, bin, "server", "--data-dir", dir, "--listen", addr,
		"--etcd-client-addr", "127.0.0.1:0", "--etcd-peer-addr", "127.0.0.1:0", "--log-level", "warn")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start weir server: %w", err)
	}
	s := &server{cmd: cmd, url: "https://" + addr}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return nil, errors.New("weir server not ready in 60 s (see server.log)")
		}
		tok, err1 := os.ReadFile(filepath.Join(dir, "pki", "admin.token"))
		ca, err2 := os.ReadFile(filepath.Join(dir, "pki", "ca.crt"))
		_, err3 := os.Stat(filepath.Join(dir, "admin.kubeconfig"))
		if err1 == nil && err2 == nil && err3 == nil {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(ca)
			s.token = strings.TrimSpace(string(tok))
			s.client = newClient(pool, 256)
			resp, err := s.do(ctx, http.MethodGet, "/readyz", nil)
			if err == nil && resp.StatusCode == 200 {
				resp.Body.Close()
				return s, nil
			}
			if resp != nil {
				resp.Body.Close()
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func newClient(pool *x509.CertPool, conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
		// HTTP/1.1: one stream per connection, as many agents would be.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}}
}

func (s *server) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	return s.client.Do(req)
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

func rssMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// podJSON is a pod already bound to a node that does not exist, so the
// figures measure the API and its storage, not the scheduler writing a
// FailedScheduling status and event for each of 10,000 unplaceable pods.
func podJSON(name string) []byte {
	return []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"` + name + `","labels":{"app":"bench"}},` +
		`"spec":{"nodeName":"bench-node","containers":[{"name":"c","image":"weir.local/echo:latest","ports":[{"containerPort":8080}]}]}}`)
}

// Run executes the benchmark.
func Run(ctx context.Context, o Options) (*Result, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, o.Cap)
	defer cancel()
	dir, err := os.MkdirTemp(o.WorkDir, "apibench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	res := &Result{Pods: o.Pods, Clients: o.Clients, Watchers: o.Watchers, WatchEvents: o.Events, Etcd: "embedded (v3.7.3, same process)"}
	machineFacts(res)
	s, err := startServer(ctx, o.Binary, dir)
	if err != nil {
		return nil, err
	}
	defer s.stop()

	// Idle: let start-up garbage settle first.
	time.Sleep(3 * time.Second)
	if res.IdleRSSMiB, err = rssMiB(s.cmd.Process.Pid); err != nil {
		return nil, err
	}

	// Creates.
	if _, err := s.do(ctx, http.MethodPost, "/api/v1/namespaces", []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bench"}}`)); err != nil {
		return nil, err
	}
	var next, errs atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range o.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(o.Pods) || ctx.Err() != nil {
					return
				}
				resp, err := s.do(ctx, http.MethodPost, "/api/v1/namespaces/bench/pods", podJSON(fmt.Sprintf("pod-%06d", i)))
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		res.Notes = append(res.Notes, "creates: > cap (aborted)")
	}
	res.CreateSeconds = time.Since(t0).Seconds()
	res.CreateErrors = errs.Load()
	res.CreatesPerSecond = float64(int64(o.Pods)-res.CreateErrors) / res.CreateSeconds
	// Let the server settle (GC, compaction of its write buffers) first.
	time.Sleep(2 * time.Second)
	if res.LoadedRSSMiB, err = rssMiB(s.cmd.Process.Pid); err != nil {
		return nil, err
	}

	// Watch fan-out.
	lat, err := watchLatency(ctx, s, o)
	if err != nil {
		res.Notes = append(res.Notes, "watch: "+err.Error())
	}
	res.WatchDeliveries = len(lat)
	if len(lat) > 0 {
		sort.Float64s(lat)
		res.WatchP50Millis = lat[len(lat)/2]
		res.WatchP99Millis = lat[len(lat)*99/100]
		res.WatchMaxMillis = lat[len(lat)-1]
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// watchLatency opens o.Watchers watches on one resource, writes o.Events
// changes stamped with their send time, and returns every delivery's
// latency in milliseconds.
func watchLatency(ctx context.Context, s *server, o Options) ([]float64, error) {
	pool := s.client.Transport.(*http.Transport).TLSClientConfig.RootCAs
	wc := newClient(pool, o.Watchers+8)
	if _, err := s.do(ctx, http.MethodPost, "/api/v1/namespaces/bench/configmaps", []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"tick"},"data":{"t":"0"}}`)); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan []float64, o.Watchers)
	var opened sync.WaitGroup
	var openErr atomic.Value
	for range o.Watchers {
		opened.Add(1)
		go func() {
			var out []float64
			defer func() { results <- out }()
			req, _ := http.NewRequestWithContext(wctx, http.MethodGet, s.url+"/api/v1/namespaces/bench/configmaps?watch=1&fieldSelector=metadata.name%3Dtick&resourceVersion=1&allowWatchBookmarks=false", nil)
			req.URL.RawQuery = strings.Replace(req.URL.RawQuery, "resourceVersion=1", "resourceVersion="+currentRV(ctx, s), 1)
			req.Header.Set("Authorization", "Bearer "+s.token)
			resp, err := wc.Do(req)
			if err != nil || resp.StatusCode != 200 {
				if err == nil {
					err = fmt.Errorf("watch answered %d", resp.StatusCode)
				}
				openErr.Store(err)
				opened.Done()
				return
			}
			opened.Done()
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				now := time.Now()
				var ev struct {
					Type   string
					Object struct {
						Data map[string]string `json:"data"`
					}
				}
				if json.Unmarshal(sc.Bytes(), &ev) != nil {
					continue
				}
				sent, err := strconv.ParseInt(ev.Object.Data["t"], 10, 64)
				if err != nil || sent == 0 {
					continue
				}
				out = append(out, float64(now.UnixNano()-sent)/1e6)
				if len(out) >= o.Events {
					return
				}
			}
		}()
	}
	opened.Wait()
	if e, ok := openErr.Load().(error); ok {
		return nil, fmt.Errorf("open watchers: %w", e)
	}
	for i := 0; i < o.Events && ctx.Err() == nil; i++ {
		body := fmt.Sprintf(`{"data":{"t":"%d"}}`, time.Now().UnixNano())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, s.url+"/api/v1/namespaces/bench/configmaps/tick", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.token)
		req.Header.Set("Content-Type", "application/merge-patch+json")
		resp, err := s.client.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(o.EventGap)
	}
	var all []float64
	timeout := time.After(60 * time.Second)
	for range o.Watchers {
		select {
		case r := <-results:
			all = append(all, r...)
		case <-timeout:
			cancel()
			return all, errors.New("some watchers did not receive every event within 60 s")
		}
	}
	return all, nil
}

func currentRV(ctx context.Context, s *server) string {
	resp, err := s.do(ctx, http.MethodGet, "/api/v1/namespaces/bench/configmaps/tick", nil)
	if err != nil {
		return "0"
	}
	defer resp.Body.Close()
	var cm struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if json.NewDecoder(resp.Body).Decode(&cm) != nil {
		return "0"
	}
	return cm.Metadata.ResourceVersion
}

func machineFacts(r *Result) {
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		r.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				r.Machine = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
			}
			if strings.HasPrefix(l, "processor") {
				r.Cores++
			}
		}
	}
}

// Markdown renders the result as a table.
func (r *Result) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# weir API benchmark\n\nMachine: %s, %d cores, kernel %s. etcd: %s.\n\n", r.Machine, r.Cores, r.Kernel, r.Etcd)
	fmt.Fprintf(&b, "| measure | value | target |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| pod creates/s (%d pods, %d concurrent HTTP/1.1 clients) | %.0f (%d errors, %.1f s) | ≥ 2,000 |\n", r.Pods, r.Clients, r.CreatesPerSecond, r.CreateErrors, r.CreateSeconds)
	fmt.Fprintf(&b, "| watch delivery p50 / p99 / max, %d watchers × %d events (%d deliveries) | %.2f / %.2f / %.2f ms | p99 ≤ 50 ms |\n", r.Watchers, r.WatchEvents, r.WatchDeliveries, r.WatchP50Millis, r.WatchP99Millis, r.WatchMaxMillis)
	fmt.Fprintf(&b, "| server RSS idle (embedded etcd) | %.1f MiB | ≤ 100 MiB |\n", r.IdleRSSMiB)
	fmt.Fprintf(&b, "| server RSS holding %d pods | %.1f MiB | — |\n", r.Pods, r.LoadedRSSMiB)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\nNote: %s\n", n)
	}
	return b.String()
}

// Package registrytest runs a real image registry for tests: Debian's
// docker-registry (the CNCF distribution registry) on a loopback port with
// its storage in a temporary directory, behind a small counting proxy so
// tests can tell how often a registry was asked for something.
package registrytest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"weir.dev/weir/nodeagent/images"
	"weir.dev/weir/test/topology"
)

// Registry is a running registry.
type Registry struct {
	// Host is the registry's address as image references name it:
	// "127.0.0.1:PORT" (the counting proxy).
	Host string
	// Dir is the registry's storage.
	Dir string

	mu       sync.Mutex
	requests map[string]int // "METHOD /path" → count
}

// Start runs a registry on loopback until t ends.
func Start(t testing.TB) *Registry {
	t.Helper()
	return StartOn(t, "127.0.0.1")
}

// StartOn runs a registry until t ends whose Host is on address addr
// (say, a simulated cluster's underlay gateway, which its nodes reach);
// the registry itself listens on loopback behind the proxy.
func StartOn(t testing.TB, addr string) *Registry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatalf("docker-registry not found (Debian package docker-registry; run make deps): %v", err)
	}
	dir := t.TempDir()
	r := &Registry{Dir: filepath.Join(dir, "storage"), requests: map[string]int{}}
	var backend string
	for attempt := 0; ; attempt++ {
		backend = net.JoinHostPort("127.0.0.1", strconv.Itoa(topology.FreePort(t)))
		err := r.run(t, bin, dir, backend)
		if err == nil {
			break
		}
		if attempt == 2 {
			t.Fatal(err)
		}
	}
	target, _ := url.Parse("http://" + backend)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{Proxy: nil} // loopback: never through the sandbox's proxy
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests[req.Method+" "+req.URL.Path]++
		r.mu.Unlock()
		proxy.ServeHTTP(w, req)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	r.Host = ln.Addr().String()
	return r
}

// run starts docker-registry on addr and waits until it answers.
func (r *Registry) run(t testing.TB, bin, dir, addr string) error {
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, r.Dir, addr)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start docker-registry: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Cleanup(stop)
				return nil
			}
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			return fmt.Errorf("docker-registry exited (%v): %s", err, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("docker-registry on %s did not answer within 30 s", addr)
		}
	}
}

// Requests is how many requests with method for path the registry got.
func (r *Registry) Requests(method, path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[method+" "+path]
}

// Push imports img into a scratch namespace of c and pushes it to the
// registry under each of its names, which must name this registry
// (r.Host + "/repo:tag"). It goes through the same resolver pulls use,
// over plain HTTP.
func (r *Registry) Push(t testing.TB, c *client.Client, img images.Image) {
	t.Helper()
	ns := topology.UniqueName(t, "push")
	ctx := namespaces.WithNamespace(t.Context(), ns)
	if _, err := images.ImportImage(ctx, c, ns, img); err != nil {
		t.Fatal(err)
	}
	p, err := images.NewPuller(c, []string{r.Host})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range img.Names {
		i, err := c.GetImage(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Push(ctx, name, i.Target(), client.WithResolver(p.Resolver())); err != nil {
			t.Fatalf("push %s: %v", name, err)
		}
	}
	t.Cleanup(func() {
		ctx := namespaces.WithNamespace(context.Background(), ns)
		for _, name := range img.Names {
			_ = c.ImageService().Delete(ctx, name)
		}
		_ = c.NamespaceService().Delete(ctx, ns)
	})
}

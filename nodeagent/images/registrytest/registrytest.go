// Package registrytest runs a real image registry for tests: Debian's
// docker-registry (the CNCF distribution registry) on a loopback port with
// its storage in a temporary directory, behind a small counting proxy so
// tests can tell how often a registry was asked for something.
package registrytest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"golang.org/x/crypto/bcrypt"

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
	// Username and Password, when set (StartWithAuth), are what the
	// registry requires of every request (HTTP basic authentication
	// against an htpasswd file); Push uses them.
	Username, Password string

	mu       sync.Mutex
	requests map[string]int // "METHOD /path" → count
	hold     chan struct{}  // while non-nil, requests wait for it to close
	held     int            // requests that waited on hold
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
	return start(t, addr, "", "")
}

// StartWithAuth runs a registry on loopback until t ends that answers 401
// Unauthorized to any request without username and password (htpasswd
// authentication, a bcrypt hash; plain HTTP, as the registry is on
// loopback). It fails t unless the registry is seen to refuse an
// anonymous request.
func StartWithAuth(t testing.TB, username, password string) *Registry {
	t.Helper()
	return StartWithAuthOn(t, "127.0.0.1", username, password)
}

// StartWithAuthOn is StartWithAuth with the registry's Host on addr (see
// StartOn).
func StartWithAuthOn(t testing.TB, addr, username, password string) *Registry {
	t.Helper()
	if username == "" || strings.Contains(username, ":") {
		t.Fatalf("registrytest: username %q: want non-empty, without ':'", username)
	}
	return start(t, addr, username, password)
}

func start(t testing.TB, addr, username, password string) *Registry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatalf("docker-registry not found (Debian package docker-registry; run make deps): %v", err)
	}
	dir := t.TempDir()
	r := &Registry{Dir: filepath.Join(dir, "storage"), requests: map[string]int{}, Username: username, Password: password}
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
		hold := r.hold
		if hold != nil {
			r.held++
		}
		r.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-req.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, req)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	r.Host = ln.Addr().String()
	return r
}

// run starts docker-registry on addr and waits until it answers.
func (r *Registry) run(t testing.TB, bin, dir, addr string) error {
	auth := ""
	want := http.StatusOK
	if r.Username != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
		if err != nil {
			return fmt.Errorf("hash the registry's password: %w", err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(r.Username+":"+string(hash)+"\n"), 0o600); err != nil {
			return err
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: weir-test\n    path: %s\n", htpasswd)
		// Up, it refuses an anonymous request: that is the point.
		want = http.StatusUnauthorized
	}
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
%s`, r.Dir, addr, auth)
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
			if resp.StatusCode == want {
				t.Cleanup(stop)
				return nil
			}
			if resp.StatusCode != http.StatusServiceUnavailable {
				stop()
				return fmt.Errorf("docker-registry on %s answered GET /v2/ with %s, want %d", addr, resp.Status, want)
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

// Hold makes every request to the registry wait until release is
// called, so a test can see which pulls are under way at once; held
// reports how many requests have arrived since Hold.
func (r *Registry) Hold() (held func() int, release func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{})
	r.hold, r.held = ch, 0
	var once sync.Once
	return func() int {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.held
		}, func() {
			once.Do(func() {
				r.mu.Lock()
				r.hold = nil
				r.mu.Unlock()
				close(ch)
			})
		}
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
	var creds []images.Credential
	if r.Username != "" {
		creds = []images.Credential{r.Credential()}
	}
	for _, name := range img.Names {
		i, err := c.GetImage(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Push(ctx, name, i.Target(), client.WithResolver(p.Resolver(creds...))); err != nil {
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

// Credential is the registry's username and password for its Host
// (StartWithAuth).
func (r *Registry) Credential() images.Credential {
	return images.Credential{Registry: r.Host, Username: r.Username, Password: r.Password}
}

// DockerConfigJSON is a .dockerconfigjson (as `kubectl create secret
// docker-registry` writes it) with the registry's credentials under key,
// say r.Host or "http://"+r.Host.
func (r *Registry) DockerConfigJSON(key string) []byte {
	auth := base64.StdEncoding.EncodeToString([]byte(r.Username + ":" + r.Password))
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{key: map[string]string{
		"username": r.Username, "password": r.Password, "auth": auth}}})
	return b
}

// Package ha tests weir's high availability on a real 3-member etcd
// cluster (Debian's etcd-server) with two weir server processes: writes
// through either server are seen by watches on the other, losing an etcd
// member loses no acknowledged write, and killing the leading server moves
// the election to the other within the lease TTL.
package ha

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"weir.dev/weir/controlplane/leader"
	"weir.dev/weir/test/etcdproc"
	"weir.dev/weir/test/topology"
)

var weirBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "weir-ha-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	weirBin = filepath.Join(dir, "weir")
	build := exec.Command("go", "build", "-o", weirBin, "weir.dev/weir/cmd/weir")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build weir:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const leaseTTL = 3 // seconds

type proc struct {
	identity string
	url      string
	dataDir  string
	cmd      *exec.Cmd
	done     chan struct{}
}

// startServer runs `weir server` against etcd as its own process, waits for
// /readyz and returns it; it is killed in t.Cleanup.
func startServer(t *testing.T, identity string, endpoints []string) *proc {
	t.Helper()
	p := &proc{identity: identity, dataDir: t.TempDir()}
	addr := fmt.Sprintf("127.0.0.1:%d", topology.FreePort(t))
	p.url = "https://" + addr
	p.cmd = exec.Command(weirBin, "server", "--data-dir", p.dataDir, "--listen", addr,
		"--etcd-endpoints", strings.Join(endpoints, ","), "--identity", identity,
		"--leader-lease-ttl", fmt.Sprint(leaseTTL), "--log-level", "warn")
	logf, err := os.Create(filepath.Join(p.dataDir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start weir server: %v", err)
	}
	p.done = make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(p.dataDir, "server.log"))
			t.Logf("%s log:\n%s", identity, tail(string(b), 4000))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(p.dataDir, "admin.kubeconfig")); err == nil {
			if resp, err := p.httpClient().Get(p.url + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return p
				}
			}
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(filepath.Join(p.dataDir, "server.log"))
			t.Fatalf("weir server %s exited:\n%s", identity, tail(string(b), 4000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("weir server %s not ready in 60 s", identity)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (p *proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (p *proc) ca() []byte {
	b, _ := os.ReadFile(filepath.Join(p.dataDir, "pki", "ca.crt"))
	return b
}

func (p *proc) token() string {
	b, _ := os.ReadFile(filepath.Join(p.dataDir, "pki", "admin.token"))
	return strings.TrimSpace(string(b))
}

func (p *proc) httpClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.ca())
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func (p *proc) client(t *testing.T) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(&rest.Config{Host: p.url, BearerToken: p.token(), QPS: -1,
		TLSClientConfig: rest.TLSClientConfig{CAData: p.ca()}, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func cm(name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": name}}
}

// watchNames streams ConfigMap names seen by a watch on p from rv.
func watchNames(t *testing.T, ctx context.Context, p *proc, rv string) <-chan string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion="+rv, nil)
	req.Header.Set("Authorization", "Bearer "+p.token())
	hc := p.httpClient()
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("watch on %s: %v %v", p.identity, resp, err)
	}
	out := make(chan string, 1024)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev struct {
				Object metav1.PartialObjectMetadata
			}
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				out <- ev.Object.Name
			}
		}
	}()
	return out
}

func expectName(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case n, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed before %s arrived", want)
			}
			if n == want {
				return
			}
		case <-deadline:
			t.Fatalf("watch did not deliver %s within 20 s", want)
		}
	}
}

func etcdClient(t *testing.T, endpoints []string) *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func currentLeader(t *testing.T, cli *clientv3.Client) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, leader.Prefix, clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

func TestTwoServersOnThreeMemberEtcd(t *testing.T) {
	etcd := etcdproc.StartCluster(t, 3)
	a := startServer(t, "server-a", etcd.Endpoints())
	b := startServer(t, "server-b", etcd.Endpoints())
	if string(a.ca()) != string(b.ca()) || a.token() != b.token() {
		t.Fatalf("the two servers do not share one CA and admin token")
	}
	ca, cb := a.client(t), b.client(t)
	ctx := t.Context()

	t.Run("writes through either server reach watches on the other", func(t *testing.T) {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		onA, onB := watchNames(t, wctx, a, "0"), watchNames(t, wctx, b, "0")
		if _, err := ca.CoreV1().ConfigMaps("default").Create(ctx, cm("from-a"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		expectName(t, onB, "from-a")
		if _, err := cb.CoreV1().ConfigMaps("default").Create(ctx, cm("from-b"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		expectName(t, onA, "from-b")
	})

	t.Run("losing one etcd member loses no acknowledged write", func(t *testing.T) {
		var (
			mu    sync.Mutex
			acked []string
			wg    sync.WaitGroup
		)
		stop := make(chan struct{})
		for i, c := range []kubernetes.Interface{ca, cb} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; n < 2000; n++ {
					select {
					case <-stop:
						return
					default:
					}
					name := fmt.Sprintf("w%d-%04d", i, n)
					if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, cm(name), metav1.CreateOptions{}); err == nil {
						mu.Lock()
						acked = append(acked, name)
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(500 * time.Millisecond)
		// The etcd leader is the hardest member to lose: writes in flight
		// must survive an election.
		victim := etcd.Members[0]
		ecli := etcdClient(t, etcd.Endpoints())
		for _, m := range etcd.Members {
			st, err := ecli.Status(ctx, m.ClientURL)
			if err == nil && st.Leader == st.Header.MemberId {
				victim = m
			}
		}
		if err := victim.Kill(); err != nil {
			t.Fatal(err)
		}
		// Keep writing with two members left; writes must still be accepted.
		mu.Lock()
		before := len(acked)
		mu.Unlock()
		cluster := func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) > before+50 }
		deadline := time.Now().Add(60 * time.Second)
		for !cluster() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		if !cluster() {
			t.Fatalf("fewer than 50 writes acknowledged in 60 s after losing one etcd member (before %d, now %d)", before, len(acked))
		}
		for _, name := range acked {
			var err error
			for range 3 {
				// Retry transport errors only; NotFound means the write is gone.
				if _, err = cb.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{}); err == nil || apierrors.IsNotFound(err) {
					break
				}
				time.Sleep(time.Second)
			}
			if err != nil {
				t.Fatalf("acknowledged write %s is lost: %v", name, err)
			}
		}
		t.Logf("%d writes acknowledged and all read back after killing %s", len(acked), victim.Name)
		if err := victim.Restart(t); err != nil {
			t.Fatal(err)
		}
		etcd.WaitHealthy(t)
	})

	t.Run("killing the leading server moves the election within the lease TTL", func(t *testing.T) {
		cli := etcdClient(t, etcd.Endpoints())
		var lead string
		deadline := time.Now().Add(30 * time.Second)
		for lead == "" && time.Now().Before(deadline) {
			lead = currentLeader(t, cli)
			time.Sleep(50 * time.Millisecond)
		}
		if lead != a.identity && lead != b.identity {
			t.Fatalf("leader is %q, want one of the servers", lead)
		}
		dead, alive := a, b
		if lead == b.identity {
			dead, alive = b, a
		}
		dead.kill()
		killed := time.Now()
		var now string
		for time.Since(killed) < 30*time.Second {
			if now = currentLeader(t, cli); now == alive.identity {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		took := time.Since(killed)
		if now != alive.identity {
			t.Fatalf("leader after killing %s is %q, want %s", dead.identity, now, alive.identity)
		}
		// The dead leader's session lease expires at most one TTL after its
		// last keep-alive; allow one second for the watch that wakes the
		// other candidate.
		if took > time.Duration(leaseTTL)*time.Second+time.Second {
			t.Fatalf("election moved after %s, more than the %d s lease TTL", took, leaseTTL)
		}
		t.Logf("election moved from %s to %s in %s", dead.identity, alive.identity, took)
		// And the survivor still serves.
		if _, err := alive.client(t).CoreV1().ConfigMaps("default").Create(ctx, cm("after-failover"), metav1.CreateOptions{}); err != nil {
			t.Fatalf("write after failover: %v", err)
		}
	})
}

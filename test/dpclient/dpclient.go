// Package dpclient runs data-plane test clients as child processes of the
// test binary, so each client can live in a network namespace and a cgroup
// of its own (socket load balancing acts on the cgroup of the process that
// connects). A client connects to an address over TCP or UDP, sends a line
// and prints the line it gets back; a held client keeps its connection
// open and exchanges another line on request, to show that established
// connections survive data-plane changes.
package dpclient

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	vnetns "github.com/vishvananda/netns"
)

const envChild = "WEIR_DPCLIENT_CHILD"

// Result is what one exchange produced.
type Result struct {
	Answer string `json:"answer"`
	Err    string `json:"err,omitempty"`
	Errno  int    `json:"errno,omitempty"`
	// Peer is what getpeername reported for the connected socket (TCP) or
	// the source of the reply (UDP).
	Peer string `json:"peer,omitempty"`
}

// Refused reports whether the exchange failed with ECONNREFUSED.
func (r Result) Refused() bool { return r.Errno == int(syscall.ECONNREFUSED) }

// MaybeChild turns the process into a client when it was started as one.
// Call it first thing in TestMain.
func MaybeChild() {
	if os.Getenv(envChild) == "" {
		return
	}
	os.Exit(child())
}

// Spec says where a client runs and what it connects to.
type Spec struct {
	Netns   string // "" for the test's own namespace
	Cgroup  string // cgroup v2 directory to join before connecting ("" none)
	Proto   string // "tcp" or "udp"
	Addr    string // host:port
	Timeout time.Duration
	// Local binds the client socket to this address first (optional).
	Local string
	// HTTPPath, if set, makes each exchange an HTTP/1.0 GET of this path
	// (one connection per exchange); the answer is the response body.
	HTTPPath string
}

// Client is a running client process.
type Client struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// Start starts a client and lets it connect; Exchange then talks.
func Start(t testing.TB, s Spec) *Client {
	t.Helper()
	if s.Timeout == 0 {
		s.Timeout = 2 * time.Second
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", "DP_NETNS="+s.Netns, "DP_PROTO="+s.Proto,
		"DP_ADDR="+s.Addr, "DP_TIMEOUT="+s.Timeout.String(), "DP_LOCAL="+s.Local, "DP_HTTP_PATH="+s.HTTPPath)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start client: %v", err)
	}
	c := &Client{cmd: cmd, in: in, out: bufio.NewReader(outp)}
	t.Cleanup(c.Close)
	if s.Cgroup != "" {
		if err := os.WriteFile(filepath.Join(s.Cgroup, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			t.Fatalf("move client into cgroup %s: %v", s.Cgroup, err)
		}
	}
	return c
}

// Exchange sends one line on the client's connection (connecting on the
// first call) and returns the answer.
func (c *Client) Exchange(t testing.TB) Result {
	t.Helper()
	if _, err := io.WriteString(c.in, "go\n"); err != nil {
		return Result{Err: "client gone: " + err.Error()}
	}
	line, err := c.out.ReadString('\n')
	if err != nil {
		return Result{Err: "client gone: " + err.Error()}
	}
	var r Result
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("client said %q: %v", line, err)
	}
	return r
}

// Close ends the client.
func (c *Client) Close() {
	if c.cmd.Process == nil {
		return
	}
	_ = c.in.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// Once runs a client for a single exchange.
func Once(t testing.TB, s Spec) Result {
	t.Helper()
	c := Start(t, s)
	defer c.Close()
	return c.Exchange(t)
}

func child() int {
	runtime.LockOSThread()
	if ns := os.Getenv("DP_NETNS"); ns != "" {
		h, err := vnetns.GetFromName(ns)
		if err == nil {
			err = vnetns.Set(h)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "dpclient: enter netns:", err)
			return 2
		}
	}
	timeout, _ := time.ParseDuration(os.Getenv("DP_TIMEOUT"))
	proto, addr := os.Getenv("DP_PROTO"), os.Getenv("DP_ADDR")
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	var conn net.Conn
	var rd *bufio.Reader
	for in.Scan() {
		var r Result
		if p := os.Getenv("DP_HTTP_PATH"); p != "" {
			r = httpExchange(proto, addr, p, timeout)
			_ = out.Encode(r)
			continue
		}
		if conn == nil {
			d := net.Dialer{Timeout: timeout}
			if l := os.Getenv("DP_LOCAL"); l != "" {
				if proto == "udp" {
					d.LocalAddr, _ = net.ResolveUDPAddr("udp", l)
				} else {
					d.LocalAddr, _ = net.ResolveTCPAddr("tcp", l)
				}
			}
			c, err := d.Dial(proto, addr)
			if err != nil {
				r.fail(err)
				_ = out.Encode(r)
				continue
			}
			conn, rd = c, bufio.NewReader(c)
		}
		_ = conn.SetDeadline(time.Now().Add(timeout))
		if _, err := io.WriteString(conn, "hello\n"); err != nil {
			r.fail(err)
		} else if line, err := rd.ReadString('\n'); err != nil {
			r.fail(err)
		} else {
			r.Answer = strings.TrimSpace(line)
			r.Peer = conn.RemoteAddr().String()
		}
		_ = out.Encode(r)
	}
	if conn != nil {
		conn.Close()
	}
	return 0
}

func (r *Result) fail(err error) {
	r.Err = err.Error()
	var errno syscall.Errno
	if errors.As(err, &errno) {
		r.Errno = int(errno)
	}
}

func httpExchange(proto, addr, path string, timeout time.Duration) Result {
	var r Result
	c, err := net.DialTimeout(proto, addr, timeout)
	if err != nil {
		r.fail(err)
		return r
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr); err != nil {
		r.fail(err)
		return r
	}
	b, err := io.ReadAll(c)
	if err != nil {
		r.fail(err)
		return r
	}
	_, body, ok := strings.Cut(string(b), "\r\n\r\n")
	if !ok {
		r.Err = fmt.Sprintf("malformed HTTP answer %q", b)
		return r
	}
	r.Answer, r.Peer = strings.TrimSpace(body), c.RemoteAddr().String()
	return r
}

// HTTPGet runs one HTTP GET of path as a client described by s.
func HTTPGet(t testing.TB, s Spec, path string) (string, error) {
	t.Helper()
	s.HTTPPath = path
	r := Once(t, s)
	if r.Err != "" {
		return "", errors.New(r.Err)
	}
	return r.Answer, nil
}

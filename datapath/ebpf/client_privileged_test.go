package ebpf

// A client process for the socket-LB tests. cgroup membership is per
// process and a socket's cgroup is fixed when the socket is created, so
// the client is the test binary run again (TestHelperClient): it waits on
// stdin until the test has written its pid to the cgroup, then runs one
// JSON command per line and answers one JSON result per line.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"weir.dev/weir/test/echo"
)

const helperEnv = "WEIR_SOCKLB_TEST_CLIENT"

type clientCmd struct {
	Op   string `json:"op"`   // http, dial, open, req, peer, close, udp, udpconn
	Addr string `json:"addr"` // destination ip:port
	ID   string `json:"id"`   // a connection kept between commands
}

type clientResult struct {
	Err      string `json:"err,omitempty"`
	Errno    int    `json:"errno,omitempty"`
	Hostname string `json:"hostname,omitempty"` // backend that answered
	Seen     string `json:"seen,omitempty"`     // client address the backend saw
	Remote   string `json:"remote,omitempty"`   // getpeername, or the UDP reply's source
	Elapsed  int64  `json:"elapsed_ms"`
}

// TestHelperClient is the client process; it does nothing in a normal run.
func TestHelperClient(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	runClient(os.Stdin, os.Stdout)
	os.Exit(0)
}

func runClient(in io.Reader, out io.Writer) {
	sc := bufio.NewScanner(in)
	enc := json.NewEncoder(out)
	conns := map[string]*keptConn{}
	for sc.Scan() {
		var cmd clientCmd
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			enc.Encode(clientResult{Err: err.Error()})
			continue
		}
		start := time.Now()
		res := runCmd(cmd, conns)
		res.Elapsed = time.Since(start).Milliseconds()
		enc.Encode(res)
	}
}

type keptConn struct {
	c net.Conn
	r *bufio.Reader
}

func fail(err error) clientResult {
	res := clientResult{Err: err.Error()}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		res.Errno = int(errno)
	}
	return res
}

func runCmd(cmd clientCmd, conns map[string]*keptConn) clientResult {
	deadline := time.Now().Add(2 * time.Second)
	switch cmd.Op {
	case "dial": // connect only
		c, err := net.DialTimeout("tcp4", cmd.Addr, 2*time.Second)
		if err != nil {
			return fail(err)
		}
		defer c.Close()
		return clientResult{Remote: c.RemoteAddr().String()}
	case "http", "open": // a new connection and one request on it
		c, err := net.DialTimeout("tcp4", cmd.Addr, 2*time.Second)
		if err != nil {
			return fail(err)
		}
		k := &keptConn{c: c, r: bufio.NewReader(c)}
		res := k.request(deadline)
		res.Remote = peer(c)
		if cmd.Op == "open" && res.Err == "" {
			conns[cmd.ID] = k
		} else {
			c.Close()
		}
		return res
	case "req", "peer", "close":
		k := conns[cmd.ID]
		if k == nil {
			return clientResult{Err: "no connection " + cmd.ID}
		}
		switch cmd.Op {
		case "req":
			res := k.request(deadline)
			res.Remote = peer(k.c)
			return res
		case "peer":
			return clientResult{Remote: peer(k.c)}
		}
		k.c.Close()
		delete(conns, cmd.ID)
		return clientResult{}
	case "udp": // unconnected: sendto and recvfrom
		raddr, err := net.ResolveUDPAddr("udp4", cmd.Addr)
		if err != nil {
			return fail(err)
		}
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return fail(err)
		}
		defer c.Close()
		c.SetDeadline(deadline)
		if _, err := c.WriteToUDP([]byte(echo.Whoami), raddr); err != nil {
			return fail(err)
		}
		buf := make([]byte, 1500)
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			return fail(err)
		}
		return reply(string(buf[:n]), from.String())
	case "udpconn": // connect, send, recv
		c, err := net.Dial("udp4", cmd.Addr)
		if err != nil {
			return fail(err)
		}
		defer c.Close()
		c.SetDeadline(deadline)
		if _, err := c.Write([]byte(echo.Whoami)); err != nil {
			return fail(err)
		}
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		if err != nil {
			return fail(err)
		}
		return reply(string(buf[:n]), peer(c))
	}
	return clientResult{Err: "unknown op " + cmd.Op}
}

func reply(s, remote string) clientResult {
	r, err := echo.ParseReply(s)
	if err != nil {
		return fail(err)
	}
	return clientResult{Hostname: r.Hostname, Seen: r.Client, Remote: remote}
}

// request sends GET / on a kept-alive connection and reads the reply.
func (k *keptConn) request(deadline time.Time) clientResult {
	k.c.SetDeadline(deadline)
	if _, err := io.WriteString(k.c, "GET / HTTP/1.1\r\nHost: weir\r\n\r\n"); err != nil {
		return fail(err)
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		return fail(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fail(err)
	}
	return reply(string(body), "")
}

// peer asks the kernel now (getpeername), not Go's address cached at
// connect time.
func peer(c net.Conn) string {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return ""
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return ""
	}
	var out string
	raw.Control(func(fd uintptr) {
		sa, err := unix.Getpeername(int(fd))
		if err != nil {
			out = "error: " + err.Error()
			return
		}
		if in4, ok := sa.(*unix.SockaddrInet4); ok {
			out = net.IP(in4.Addr[:]).String() + ":" + strconv.Itoa(in4.Port)
		}
	})
	return out
}

// client is the test's handle on a client process inside a cgroup.
type client struct {
	t   *testing.T
	in  io.WriteCloser
	out *json.Decoder
}

// startClient runs a client process in the network namespace at nsPath
// and moves it into cgroup before it opens any socket.
func startClient(t *testing.T, cgroup, nsPath string) *client {
	t.Helper()
	// nsenter enters only the network namespace (ip netns exec would also
	// remount /sys), then execs the test binary under the same pid.
	cmd := exec.Command("nsenter", "--net="+nsPath, "--", os.Args[0], "-test.run=^TestHelperClient$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	pid := strconv.Itoa(cmd.Process.Pid)
	if err := os.WriteFile(filepath.Join(cgroup, "cgroup.procs"), []byte(pid), 0); err != nil {
		t.Fatalf("move client %s into %s: %v", pid, cgroup, err)
	}
	return &client{t: t, in: in, out: json.NewDecoder(out)}
}

func (c *client) do(cmd clientCmd) clientResult {
	c.t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := fmt.Fprintf(c.in, "%s\n", b); err != nil {
		c.t.Fatalf("client %+v: %v", cmd, err)
	}
	var res clientResult
	if err := c.out.Decode(&res); err != nil {
		c.t.Fatalf("client %+v: no answer: %v", cmd, err)
	}
	return res
}

// must runs cmd and fails the test on an error.
func (c *client) must(cmd clientCmd) clientResult {
	c.t.Helper()
	res := c.do(cmd)
	if res.Err != "" {
		c.t.Fatalf("client %+v: %s", cmd, res.Err)
	}
	return res
}

func hostnames(rs []clientResult) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		m[r.Hostname]++
	}
	return m
}

func joinKeys(m map[string]int) string {
	var ks []string
	for k, n := range m {
		ks = append(ks, k+"×"+strconv.Itoa(n))
	}
	return strings.Join(ks, " ")
}

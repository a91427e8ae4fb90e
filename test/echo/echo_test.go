package echo

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func start(t *testing.T) *Server {
	t.Helper()
	s, err := Listen(Config{Hostname: "be-1", HTTPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", UDPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(t.Context()) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

func get(t *testing.T, url string, accept string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTP(t *testing.T) {
	s := start(t)
	base := "http://" + s.HTTPAddr().String()

	code, body := get(t, base+"/", "")
	rep, err := ParseReply(body)
	if code != 200 || err != nil || rep.Hostname != "be-1" || !strings.HasPrefix(rep.Client, "127.0.0.1:") {
		t.Fatalf("GET / = %d %q (%v), want hostname be-1 and a 127.0.0.1 client", code, body, err)
	}
	_, body = get(t, base+"/", "application/json")
	if err := json.Unmarshal([]byte(body), &rep); err != nil || rep.Hostname != "be-1" {
		t.Fatalf("GET / as JSON = %q (%v)", body, err)
	}

	for _, step := range []struct {
		path string
		want int
	}{
		{"/healthz", 200},
		{"/set-ready?v=0", 200},
		{"/healthz", 503},
		{"/set-ready?v=2", 400},
		{"/healthz", 503},
		{"/set-ready?v=1", 200},
		{"/healthz", 200},
		{"/nope", 404},
	} {
		if code, body := get(t, base+step.path, ""); code != step.want {
			t.Errorf("GET %s = %d %q, want %d", step.path, code, body, step.want)
		}
	}
}

func TestTCPEcho(t *testing.T) {
	s := start(t)
	c, err := net.DialTimeout("tcp", s.TCPAddr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for _, line := range []string{"hello\n", "again\n"} {
		io.WriteString(c, line)
		got, err := r.ReadString('\n')
		if err != nil || got != line {
			t.Fatalf("echo of %q = %q, %v", line, got, err)
		}
	}
}

func TestUDPEcho(t *testing.T) {
	s := start(t)
	c, err := net.Dial("udp", s.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	for _, tc := range []struct{ send, wantPrefix string }{
		{"ping", "ping"},
		{Whoami, "hostname=be-1 client=" + c.LocalAddr().String()},
	} {
		c.Write([]byte(tc.send))
		n, err := c.Read(buf)
		if err != nil || !strings.HasPrefix(string(buf[:n]), tc.wantPrefix) {
			t.Errorf("reply to %q = %q, %v; want prefix %q", tc.send, buf[:n], err, tc.wantPrefix)
		}
	}
}

func TestParseReply(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"hostname=a client=1.2.3.4:5\n", true},
		{"client=1.2.3.4:5 hostname=a", true},
		{"hostname=a", false},
		{"", false},
	} {
		r, err := ParseReply(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseReply(%q) = %+v, %v; want ok=%t", tc.in, r, err, tc.ok)
		}
	}
}

package apiserver_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	"weir.dev/weir/controlplane/apiserver"
	"weir.dev/weir/controlplane/auth"
	"weir.dev/weir/nodeagent/agentserver"
	"weir.dev/weir/nodeagent/join"
	"weir.dev/weir/nodeagent/runtime"
	"weir.dev/weir/test/cluster"
)

// scriptRuntime stands in for containerd behind a real agent server: its
// "containers" echo their command, copy stdin and exit with the code the
// command names ("exit N"); logs are files it was given. The real runtime
// is tested on weir up (test/e2e TestLogsAndExec).
type scriptRuntime struct{ logs map[string]string }

func (r scriptRuntime) Exec(_ context.Context, pod *corev1.Pod, container string, cmd []string, sio runtime.ExecIO) (int, error) {
	if container == "stopped" {
		return 0, &runtime.NotRunningError{Message: fmt.Sprintf("container %q in pod %q is not running", container, pod.Name)}
	}
	fmt.Fprintf(sio.Stdout, "%s in %s: %s\n", container, pod.Name, strings.Join(cmd, " "))
	if sio.Stdin != nil {
		_, _ = io.Copy(sio.Stdout, sio.Stdin)
	}
	if sio.Stderr != nil {
		fmt.Fprintln(sio.Stderr, "to stderr")
	}
	if len(cmd) == 2 && cmd[0] == "exit" {
		return strconv.Atoi(cmd[1])
	}
	return 0, nil
}

func (r scriptRuntime) ContainerLog(_ context.Context, pod *corev1.Pod, container string, previous bool) (runtime.LogFile, error) {
	if previous {
		return runtime.LogFile{}, &runtime.NoLogError{Message: fmt.Sprintf("previous terminated container %q in pod %q not found", container, pod.Name)}
	}
	return runtime.LogFile{Path: r.logs[container]}, nil
}

type podMap map[string]*corev1.Pod

func (m podMap) Pod(ns, name string) (*corev1.Pod, bool) { p, ok := m[ns+"/"+name]; return p, ok }

// startAgent registers node n1 at 127.0.0.1 with a serving certificate
// from the server and runs an agent server for pods.
func startAgent(t *testing.T, s *cluster.Server, pods podMap, rt agentserver.Runtime) (kubernetes.Interface, string) {
	t.Helper()
	ctx := t.Context()
	nc := joinNode(t, s, "n1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	node, err := nc.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: "n1"}}
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
	if _, err := nc.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// An address the node does not report is refused.
	if _, err := join.ServingCert(ctx, nc, "n1", []net.IP{net.ParseIP("10.1.2.3")}, s.CA.CertPEM(), t.TempDir()); !apierrors.IsBadRequest(errors.Unwrap(err)) || !strings.Contains(err.Error(), "10.1.2.3 is not an address of node") {
		t.Fatalf("serving certificate for a foreign address: %v", err)
	}
	cert, err := join.ServingCert(ctx, nc, "n1", []net.IP{net.ParseIP("127.0.0.1")}, s.CA.CertPEM(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CA.CertPEM())
	srv, err := agentserver.New(agentserver.Config{Serving: cert, ClientCAs: pool, Pods: pods, Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return nc, "https://" + ln.Addr().String()
}

// pods/log and pods/exec through the API server to a real agent server:
// options reach it, errors come back as kube-apiserver words them, exit
// codes survive both streaming protocols, and only admins get through.
func TestPodLogAndExecProxy(t *testing.T) {
	s := startAPI(t)
	ctx := t.Context()
	admin := s.Client(t)
	logA := filepath.Join(t.TempDir(), "a.log")
	cri := "2026-01-02T03:04:05Z stdout F one\n2026-01-02T03:04:06Z stdout F two\n2026-01-02T03:04:07.5Z stderr F three\n"
	if err := os.WriteFile(logA, []byte(cri), 0o600); err != nil {
		t.Fatal(err)
	}
	mk := func(name, node string, containers ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{NodeName: node}}
		for _, c := range containers {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "weir.local/busybox"})
		}
		p, err := admin.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	web := mk("web", "n1", "a", "stopped")
	solo := mk("solo", "n1", "a")
	mk("pending", "", "a")
	nc, agentURL := startAgent(t, s, podMap{"default/web": web, "default/solo": solo}, scriptRuntime{logs: map[string]string{"a": logA}})

	// The agent itself answers an admin's certificate, and no one else's.
	adminCert, adminKey, err := s.CA.IssueClient("someone", []string{auth.MastersGroup})
	if err != nil {
		t.Fatal(err)
	}
	plainCert, plainKey, err := s.CA.IssueClient("someone-else", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name            string
		certPEM, keyPEM []byte
		want            int
	}{
		{"admin", adminCert, adminKey, http.StatusOK},
		{"a user in no group", plainCert, plainKey, http.StatusForbidden},
		{"no certificate", nil, nil, http.StatusUnauthorized},
	} {
		t.Run("agent/"+tc.name, func(t *testing.T) {
			var certs []tls.Certificate
			if tc.certPEM != nil {
				pair, err := tls.X509KeyPair(tc.certPEM, tc.keyPEM)
				if err != nil {
					t.Fatal(err)
				}
				certs = append(certs, pair)
			}
			resp, err := s.HTTPClient(certs...).Get(agentURL + "/containerLogs/default/web/a?tailLines=1")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want || (tc.want == http.StatusOK) != (string(body) == "three\n") {
				t.Fatalf("%d %q, want %d", resp.StatusCode, body, tc.want)
			}
		})
	}

	logs := func(c kubernetes.Interface, pod string, o *corev1.PodLogOptions) (string, error) {
		// Stream, as kubectl logs reads: errors come back as the Status.
		rc, err := c.CoreV1().Pods("default").GetLogs(pod, o).Stream(ctx)
		if err != nil {
			return "", err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		return string(b), err
	}
	sinceTime := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC))
	for _, tc := range []struct {
		name    string
		pod     string
		opts    corev1.PodLogOptions
		want    string
		wantErr string
	}{
		{name: "whole log", pod: "web", opts: corev1.PodLogOptions{Container: "a"}, want: "one\ntwo\nthree\n"},
		{name: "tail", pod: "web", opts: corev1.PodLogOptions{Container: "a", TailLines: new(int64(2))}, want: "two\nthree\n"},
		{name: "limit", pod: "web", opts: corev1.PodLogOptions{Container: "a", LimitBytes: new(int64(5))}, want: "one\nt"},
		{name: "only container", pod: "solo", want: "one\ntwo\nthree\n"},
		{name: "two containers, none named", pod: "web", wantErr: "a container name must be specified for pod web, choose one of: [a stopped]"},
		{name: "unknown container", pod: "web", opts: corev1.PodLogOptions{Container: "x"}, wantErr: "container x is not valid for pod web"},
		{name: "missing pod", pod: "nope", wantErr: `pods "nope" not found`},
		{name: "unscheduled pod", pod: "pending", wantErr: "pod pending does not have a host assigned"},
		{name: "no previous", pod: "web", opts: corev1.PodLogOptions{Container: "a", Previous: true}, wantErr: `previous terminated container "a" in pod "web" not found`},
		{name: "timestamps", pod: "web", opts: corev1.PodLogOptions{Container: "a", Timestamps: true},
			want: "2026-01-02T03:04:05.000000000Z one\n2026-01-02T03:04:06.000000000Z two\n2026-01-02T03:04:07.500000000Z three\n"},
		{name: "since time", pod: "web", opts: corev1.PodLogOptions{Container: "a", SinceTime: &sinceTime}, want: "two\nthree\n"},
		{name: "since seconds", pod: "web", opts: corev1.PodLogOptions{Container: "a", SinceSeconds: new(int64(3600))}, want: ""},
		{name: "both since", pod: "web", opts: corev1.PodLogOptions{Container: "a", SinceTime: &sinceTime, SinceSeconds: new(int64(10))},
			wantErr: "at most one of `sinceTime` or `sinceSeconds` may be specified"},
	} {
		t.Run("log/"+tc.name, func(t *testing.T) {
			got, err := logs(admin, tc.pod, &tc.opts)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v (body %q), want %q", err, got, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	// A node may not read pods' logs, not even of its own pods.
	if _, err := logs(nc, "web", &corev1.PodLogOptions{Container: "a"}); !apierrors.IsForbidden(err) {
		t.Fatalf("node reads pods/log: %v, want 403", err)
	}

	exec := func(t *testing.T, protocol, container string, stdin string, cmd ...string) (string, string, error) {
		req := admin.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name("web").SubResource("exec").
			VersionedParams(&corev1.PodExecOptions{Container: container, Command: cmd, Stdin: stdin != "", Stdout: true, Stderr: true}, scheme.ParameterCodec)
		var ex remotecommand.Executor
		var err error
		switch protocol {
		case "spdy":
			ex, err = remotecommand.NewSPDYExecutor(s.RESTConfig(""), "POST", req.URL())
		case "websocket-v4":
			ex, err = remotecommand.NewWebSocketExecutorForProtocols(s.RESTConfig(""), "GET", req.URL().String(), "v4.channel.k8s.io")
		default:
			ex, err = remotecommand.NewWebSocketExecutor(s.RESTConfig(""), "GET", req.URL().String())
		}
		if err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		so := remotecommand.StreamOptions{Stdout: &out, Stderr: &errOut}
		if stdin != "" {
			so.Stdin = strings.NewReader(stdin)
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err = ex.StreamWithContext(sctx, so)
		return out.String(), errOut.String(), err
	}
	for _, protocol := range []string{"websocket", "websocket-v4", "spdy"} {
		t.Run("exec/"+protocol, func(t *testing.T) {
			out, errOut, err := exec(t, protocol, "a", "", "echo", "hi")
			if err != nil || out != "a in web: echo hi\n" || errOut != "to stderr\n" {
				t.Fatalf("exec: %q %q %v", out, errOut, err)
			}
			// v4 over WebSocket cannot say where stdin ends (v5's CLOSE
			// signal was added for that), so only the others reach EOF.
			if protocol != "websocket-v4" {
				out, _, err = exec(t, protocol, "a", "input\n", "cat")
				if err != nil || out != "a in web: cat\ninput\n" {
					t.Fatalf("exec with stdin: %q %v", out, err)
				}
			}
			var ce utilexec.CodeExitError
			if _, _, err := exec(t, protocol, "a", "", "exit", "3"); !errors.As(err, &ce) || ce.Code != 3 {
				t.Fatalf("exit 3: %v (%T)", err, err)
			}
			if _, _, err := exec(t, protocol, "stopped", "", "true"); err == nil || !strings.Contains(err.Error(), `container "stopped" in pod "web" is not running`) {
				t.Fatalf("exec in a stopped container: %v", err)
			}
			if _, _, err := exec(t, protocol, "x", "", "true"); err == nil || !strings.Contains(err.Error(), "container x is not valid for pod web") {
				t.Fatalf("exec in an unknown container: %v", err)
			}
		})
	}
}

func TestPodContainer(t *testing.T) {
	pod := func(ann string, names ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "init"}}}}
		if ann != "" {
			p.Annotations = map[string]string{apiserver.DefaultContainerAnnotation: ann}
		}
		for _, n := range names {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: n})
		}
		return p
	}
	for _, tc := range []struct {
		name, container string
		pod             *corev1.Pod
		want, wantErr   string
	}{
		{name: "named", pod: pod("", "a", "b"), container: "b", want: "b"},
		{name: "init container", pod: pod("", "a", "b"), container: "init", want: "init"},
		{name: "only one", pod: pod("", "a"), want: "a"},
		{name: "annotation", pod: pod("b", "a", "b"), want: "b"},
		{name: "annotation names no container", pod: pod("z", "a", "b"), wantErr: "a container name must be specified for pod p, choose one of: [init a b]"},
		{name: "ambiguous", pod: pod("", "a", "b"), wantErr: "a container name must be specified for pod p, choose one of: [init a b]"},
		{name: "unknown", pod: pod("", "a"), container: "x", wantErr: "container x is not valid for pod p"},
		{name: "none", pod: pod(""), wantErr: "the pod p does not have any containers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := apiserver.PodContainer(tc.pod, tc.container)
			if tc.wantErr != "" {
				if !apierrors.IsBadRequest(err) || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want BadRequest %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestAgentQueries(t *testing.T) {
	for _, tc := range []struct {
		name, query, want, wantErr string
	}{
		{name: "defaults", query: "command=ls&container=a", want: "command=ls&output=1"},
		{name: "all streams", query: "command=sh&command=-c&command=x&stdin=true&stdout=true&stderr=true&tty=true", want: "command=sh&command=-c&command=x&error=1&input=1&output=1&tty=1"},
		{name: "no stdout", query: "command=ls&stdout=false&stderr=1", want: "command=ls&error=1"},
		{name: "no command", query: "stdout=1", wantErr: "command: Required value: you must specify at least one command for the container"},
		{name: "bad bool", query: "command=ls&tty=maybe", wantErr: `tty: Invalid value: "maybe": not a boolean`},
	} {
		t.Run("exec/"+tc.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			got, err := apiserver.AgentExecQuery(q)
			if tc.wantErr != "" {
				if !apierrors.IsBadRequest(err) || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want BadRequest %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got.Encode() != tc.want {
				t.Fatalf("got %q, %v; want %q", got.Encode(), err, tc.want)
			}
		})
	}
	q, _ := url.ParseQuery("container=a&follow=true&tailLines=3&pretty=1&insecureSkipTLSVerifyBackend=true&limitBytes=9")
	if got, want := apiserver.AgentLogQuery(q).Encode(), "follow=true&limitBytes=9&tailLines=3"; got != want {
		t.Fatalf("log query %q, want %q", got, want)
	}
}

func TestAgentAddress(t *testing.T) {
	node := func(port int32, addrs ...corev1.NodeAddress) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
		n.Status.Addresses = addrs
		n.Status.DaemonEndpoints.KubeletEndpoint.Port = port
		return n
	}
	host := corev1.NodeAddress{Type: corev1.NodeHostName, Address: "n1"}
	internal := corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.2"}
	external := corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "192.0.2.7"}
	for _, tc := range []struct {
		name          string
		node          *corev1.Node
		want, wantErr string
	}{
		{name: "internal first", node: node(10250, host, external, internal), want: "10.0.0.2:10250"},
		{name: "external", node: node(10250, host, external), want: "192.0.2.7:10250"},
		{name: "no port", node: node(0, internal), wantErr: "node n1 reports no agent endpoint (status.daemonEndpoints.kubeletEndpoint.port)"},
		{name: "no address", node: node(10250, host), wantErr: "node n1 reports no InternalIP or ExternalIP address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := apiserver.AgentAddress(tc.node)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weir.dev/weir/test/cluster"
	"weir.dev/weir/test/kubectl"
)

// run runs bin with the cluster's admin kubeconfig and returns stdout,
// stderr and the exit code (-1 if it did not exit).
func (c *Cluster) run(t *testing.T, stdin string, bin string, args ...string) (string, string, int) {
	t.Helper()
	return c.runEnv(t, nil, stdin, bin, args...)
}

// runEnv is run with extra environment variables.
func (c *Cluster) runEnv(t *testing.T, env []string, stdin string, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = append(append(os.Environ(), "KUBECONFIG="+filepath.Join(c.DataDir, "admin.kubeconfig")), env...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errOut.String(), 0
	case errors.As(err, &ee):
		return out.String(), errOut.String(), ee.ExitCode()
	}
	t.Fatalf("%s %v: %v", bin, args, err)
	return "", "", -1
}

// A pod with an init container and two containers: the init container
// writes a marker into an emptyDir before either starts; a serves HTTP on
// 127.0.0.1 and b fetches it over the pod's shared localhost. weir logs
// and weir exec reach them through the API server and the node agent, and
// so does the real kubectl (WebSocket v5 exec). The agent's endpoint
// refuses callers other than the API server.
func TestLogsAndExec(t *testing.T) {
	c := up(t, 1, "--dataplane", "iptables")
	ctx := t.Context()
	node := c.NodePrefix + "1"
	began := time.Now()
	marker := fmt.Sprintf("marker-%d", time.Now().UnixNano())
	mount := []corev1.VolumeMount{{Name: "shared", MountPath: "/shared"}}
	pod, err := c.Client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "duo"},
		Spec: corev1.PodSpec{
			NodeName: node,
			Volumes:  []corev1.Volume{{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			InitContainers: []corev1.Container{{Name: "init", Image: "weir.local/busybox", ImagePullPolicy: corev1.PullNever,
				Command: []string{"sh", "-c", "echo " + marker + " > /shared/marker"}, VolumeMounts: mount}},
			Containers: []corev1.Container{
				{Name: "a", Image: "weir.local/busybox", ImagePullPolicy: corev1.PullNever, VolumeMounts: mount,
					Command: []string{"sh", "-c", `echo a starting; mkdir -p /www; echo hello-from-a > /www/index.html; ` +
						`echo "a sees $(cat /shared/marker)"; exec httpd -f -p 127.0.0.1:8081 -h /www`}},
				{Name: "b", Image: "weir.local/busybox", ImagePullPolicy: corev1.PullNever, VolumeMounts: mount,
					Command: []string{"sh", "-c", `echo "b sees $(cat /shared/marker)"; ` +
						`until wget -q -O - http://127.0.0.1:8081/; do sleep 0.2; done; ` +
						`i=0; while true; do i=$((i+1)); echo "tick $i"; ` +
						`if [ -f /shared/stop-b ]; then rm /shared/stop-b; echo "b exits"; exit 1; fi; sleep 0.5; done`}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 120*time.Second, "pod duo runs both containers", func() (bool, error) {
		p, err := c.Client.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil || p.Status.Phase != corev1.PodRunning {
			return false, err
		}
		running := 0
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Running != nil {
				running++
			}
		}
		return running == 2, nil
	})

	weir := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		return c.run(t, stdin, weirBin, args...)
	}
	mustWeir := func(args ...string) string {
		t.Helper()
		out, errOut, code := weir("", args...)
		if code != 0 {
			t.Fatalf("weir %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}

	// b printed the marker (the init container ran before it) and what
	// it fetched from a over localhost.
	cluster.Eventually(t, 60*time.Second, "b's log shows the marker and a's page", func() (bool, error) {
		out, _, _ := weir("", "logs", "duo", "-c", "b")
		return strings.HasPrefix(out, "b sees "+marker+"\nhello-from-a\ntick 1\n"), nil
	})
	if got := mustWeir("logs", "duo", "-c", "a"); got != "a starting\na sees "+marker+"\n" {
		t.Fatalf("logs -c a: %q", got)
	}
	if got := mustWeir("logs", "duo", "-c", "a", "--tail", "1"); got != "a sees "+marker+"\n" {
		t.Fatalf("logs -c a --tail 1: %q", got)
	}
	// Each line with the time it was written; since filters by it.
	checkTimestamps(t, mustWeir("logs", "duo", "-c", "a", "--timestamps"), began, []string{"a starting", "a sees " + marker})
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if got := mustWeir("logs", "duo", "-c", "a", "--since-time="+future); got != "" {
		t.Fatalf("logs --since-time in the future: %q", got)
	}
	if got := mustWeir("logs", "duo", "-c", "a", "--since=1h"); got != "a starting\na sees "+marker+"\n" {
		t.Fatalf("logs --since=1h: %q", got)
	}
	if _, errOut, code := weir("", "logs", "duo", "-c", "a", "--since=1h", "--since-time="+future); code != 1 || errOut != "error: at most one of `sinceTime` or `sinceSeconds` may be specified\n" {
		t.Fatalf("logs --since --since-time: exit %d: %q", code, errOut)
	}
	if got := mustWeir("logs", "duo", "-c", "init"); got != "" {
		t.Fatalf("logs -c init: %q (it writes to the file only)", got)
	}
	if _, errOut, code := weir("", "logs", "duo"); code != 1 || !strings.Contains(errOut, "a container name must be specified for pod duo, choose one of: [a b] or one of the init containers: [init]") {
		t.Fatalf("logs without -c: exit %d: %s", code, errOut)
	}
	if _, errOut, code := weir("", "logs", "duo", "-c", "nope"); code != 1 || !strings.Contains(errOut, "Error from server (BadRequest): container nope is not valid for pod duo") {
		t.Fatalf("logs -c nope: exit %d: %s", code, errOut)
	}
	if _, errOut, code := weir("", "logs", "duo", "-c", "a", "--previous"); code != 1 || !strings.Contains(errOut, `previous terminated container "a" in pod "duo" not found`) {
		t.Fatalf("logs --previous: exit %d: %s", code, errOut)
	}

	// exec: output, exit codes, stdin to its end.
	if got := mustWeir("exec", "duo", "-c", "a", "--", "cat", "/shared/marker"); got != marker+"\n" {
		t.Fatalf("exec cat: %q", got)
	}
	if out, errOut, code := weir("", "exec", "duo", "-c", "a", "--", "sh", "-c", "echo out; echo err >&2; exit 3"); code != 3 || out != "out\n" || !strings.Contains(errOut, "err\n") {
		t.Fatalf("exec exit 3: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out, errOut, code := weir("line one\nline two\n", "exec", "-i", "duo", "-c", "b", "--", "sh", "-c", "wc -l; echo done"); code != 0 || strings.TrimSpace(strings.Split(out, "\n")[0]) != "2" || !strings.HasSuffix(out, "done\n") {
		t.Fatalf("exec -i: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// The exec'd process has the container's environment and network.
	if got := mustWeir("exec", "duo", "-c", "b", "--", "wget", "-q", "-O", "-", "http://127.0.0.1:8081/"); got != "hello-from-a\n" {
		t.Fatalf("exec wget from b: %q", got)
	}
	if _, errOut, code := weir("", "exec", "duo", "-c", "nope", "--", "true"); code != 1 || !strings.Contains(errOut, "container nope is not valid for pod duo") {
		t.Fatalf("exec -c nope: exit %d: %s", code, errOut)
	}

	// logs -f streams lines written after it started.
	followLogs(t, c, weirBin, "logs", "-f", "duo", "-c", "b")

	// The real kubectl, whose exec speaks WebSocket v5.channel.k8s.io,
	// and SPDY (v4.channel.k8s.io) with WebSockets turned off, as
	// kubectl before 1.30 and its fallback do.
	kc := kubectl.Build(t)
	for _, tc := range []struct {
		name, env, wantUpgrade string
	}{
		{"websocket", "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true", "websocket"},
		{"spdy", "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false", "SPDY/3.1"},
	} {
		env := []string{tc.env}
		out, errOut, code := c.runEnv(t, env, "", kc, "exec", "-v=8", "duo", "-c", "a", "--", "sh", "-c", "cat /shared/marker; exit 4")
		if code != 4 || out != marker+"\n" {
			t.Fatalf("kubectl exec over %s: exit %d: %q %s", tc.name, code, out, errOut)
		}
		if !strings.Contains(strings.ToLower(errOut), "upgrade: "+strings.ToLower(tc.wantUpgrade)) {
			t.Fatalf("kubectl exec over %s: no %q upgrade in its log:\n%s", tc.name, tc.wantUpgrade, errOut)
		}
		if out, errOut, code := c.runEnv(t, env, "piped\n", kc, "exec", "-i", "duo", "-c", "a", "--", "cat"); code != 0 || out != "piped\n" {
			t.Fatalf("kubectl exec -i over %s: exit %d: %q %s", tc.name, code, out, errOut)
		}
	}
	if out, errOut, code := c.run(t, "", kc, "logs", "duo", "-c", "b"); code != 0 || !strings.Contains(out, "hello-from-a\n") {
		t.Fatalf("kubectl logs: exit %d: %q %s", code, out, errOut)
	}
	if out, errOut, code := c.run(t, "", kc, "logs", "duo", "-c", "a", "--tail=1"); code != 0 || out != "a sees "+marker+"\n" {
		t.Fatalf("kubectl logs --tail=1: exit %d: %q %s", code, out, errOut)
	}
	if out, errOut, code := c.run(t, "", kc, "logs", "duo", "-c", "a", "--timestamps"); code != 0 {
		t.Fatalf("kubectl logs --timestamps: exit %d: %q %s", code, out, errOut)
	} else {
		checkTimestamps(t, out, began, []string{"a starting", "a sees " + marker})
	}
	if out, errOut, code := c.run(t, "", kc, "logs", "duo", "-c", "a", "--since-time="+future); code != 0 || out != "" {
		t.Fatalf("kubectl logs --since-time in the future: exit %d: %q %s", code, out, errOut)
	}
	if out, errOut, code := c.run(t, "", kc, "logs", "duo", "-c", "a", "--since=1h"); code != 0 || out != "a starting\na sees "+marker+"\n" {
		t.Fatalf("kubectl logs --since=1h: exit %d: %q %s", code, out, errOut)
	}
	if out, errOut, code := c.run(t, "", kc, "exec", "duo", "-c", "a", "--", "cat", "/shared/marker"); code != 0 || out != marker+"\n" {
		t.Fatalf("kubectl exec: exit %d: %q %s", code, out, errOut)
	}
	if _, errOut, code := c.run(t, "", kc, "exec", "duo", "-c", "a", "--", "sh", "-c", "exit 3"); code != 3 {
		t.Fatalf("kubectl exec exit 3: exit %d: %s", code, errOut)
	}
	if out, errOut, code := c.run(t, "piped\n", kc, "exec", "-i", "duo", "-c", "a", "--", "cat"); code != 0 || out != "piped\n" {
		t.Fatalf("kubectl exec -i: exit %d: %q %s", code, out, errOut)
	}
	followLogs(t, c, kc, "logs", "-f", "duo", "-c", "b")

	// -t gives the command a terminal of the client's size: weir runs
	// under script(1) for a pseudo-terminal of 33x77. The size arrives
	// just after the process starts, so the command waits for it. script's
	// stdin stays open and silent (at EOF it would type into the terminal).
	script := fmt.Sprintf(`stty rows 33 cols 77; %s exec -it duo -c a -- sh -c `+
		`'tty; until stty size 2>/dev/null | grep -qv "^0 0$"; do sleep 0.1; done; stty size; exit 5'`, weirBin)
	tty := exec.CommandContext(ctx, "script", "-qec", script, "/dev/null")
	tty.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(c.DataDir, "admin.kubeconfig"))
	silence, hold, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	tty.Stdin = silence
	ttyOut, err := tty.Output()
	hold.Close()
	silence.Close()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 5 || !regexp.MustCompile(`^/dev/pts/\d+\r\n33 77\r\n`).Match(ttyOut) {
		t.Fatalf("exec -it under a terminal: %v, stdout %q", err, ttyOut)
	}

	// A follower ends when the container does; the next attempt has a log
	// of its own and the one before is --previous.
	follow := exec.CommandContext(ctx, weirBin, "logs", "-f", "duo", "-c", "b")
	follow.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(c.DataDir, "admin.kubeconfig"))
	var followed strings.Builder
	follow.Stdout = &followed
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 30*time.Second, "the follower has started", func() (bool, error) {
		return strings.Contains(followed.String(), "tick"), nil
	})
	mustWeir("exec", "duo", "-c", "a", "--", "touch", "/shared/stop-b")
	done := make(chan error, 1)
	go func() { done <- follow.Wait() }()
	select {
	case err := <-done:
		if err != nil || !strings.HasSuffix(followed.String(), "b exits\n") {
			t.Fatalf("logs -f as b exits: %v, %q", err, followed.String())
		}
	case <-time.After(60 * time.Second):
		follow.Process.Kill()
		t.Fatalf("logs -f did not end with the container: %q", followed.String())
	}
	cluster.Eventually(t, 60*time.Second, "b runs again after one restart", func() (bool, error) {
		p, err := c.Client.CoreV1().Pods("default").Get(ctx, "duo", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == "b" {
				return cs.RestartCount == 1 && cs.State.Running != nil, nil
			}
		}
		return false, nil
	})
	if prev := mustWeir("logs", "duo", "-c", "b", "-p"); !strings.HasPrefix(prev, "b sees "+marker+"\nhello-from-a\ntick 1\n") || !strings.HasSuffix(prev, "b exits\n") {
		t.Fatalf("logs -p -c b: %q", prev)
	}
	cluster.Eventually(t, 30*time.Second, "b's new attempt has a log of its own", func() (bool, error) {
		cur, _, _ := weir("", "logs", "duo", "-c", "b")
		return strings.HasPrefix(cur, "b sees "+marker+"\nhello-from-a\ntick 1\n") && !strings.Contains(cur, "b exits"), nil
	})

	// The agent's own endpoint: its certificate is the CA's for the node
	// address; no client certificate is 401, a node's is 403.
	n, err := c.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	port := n.Status.DaemonEndpoints.KubeletEndpoint.Port
	if port != 10250 {
		t.Fatalf("node reports agent port %d, want 10250", port)
	}
	var ip string
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			ip = a.Address
		}
	}
	caPEM, err := os.ReadFile(filepath.Join(c.DataDir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	nodeCert, err := tls.LoadX509KeyPair(filepath.Join(c.DataDir, "nodes", node, "identity", "node.crt"),
		filepath.Join(c.DataDir, "nodes", node, "identity", "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + net.JoinHostPort(ip, strconv.Itoa(int(port))) + "/containerLogs/default/duo/a"
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		want  int
	}{
		{"no client certificate", nil, http.StatusUnauthorized},
		{"a node's certificate", []tls.Certificate{nodeCert}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil,
				TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: tc.certs}}}
			resp, err := hc.Get(url)
			if err != nil {
				t.Fatalf("GET %s (verifying the agent against the cluster CA): %v", url, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want || strings.Contains(string(body), marker) {
				t.Fatalf("GET %s: %d %s, want %d", url, resp.StatusCode, body, tc.want)
			}
		})
	}
}

// checkTimestamps checks the output of logs --timestamps: want's lines,
// each after an RFC3339 time with nanoseconds (the kubelet's fixed
// width) between began and now, in order.
func checkTimestamps(t *testing.T, out string, began time.Time, want []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(want) || !strings.HasSuffix(out, "\n") {
		t.Fatalf("logs --timestamps: %q, want %d lines", out, len(want))
	}
	var last time.Time
	for i, l := range lines {
		ts, rest, _ := strings.Cut(l, " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || len(ts) != len("2006-01-02T15:04:05.000000000Z") || rest != want[i] {
			t.Fatalf("logs --timestamps line %d: %q, want an RFC3339 time with nanoseconds, a space and %q", i, l, want[i])
		}
		if at.Before(began.Add(-time.Second)) || at.After(time.Now()) || at.Before(last) {
			t.Fatalf("logs --timestamps line %d: time %v out of order or outside the test (began %v)", i, at, began)
		}
		last = at
	}
}

var tickRE = regexp.MustCompile(`^tick (\d+)$`)

// lastTick is the highest "tick N" line in log.
func lastTick(log string) int {
	last := 0
	for _, l := range strings.Split(log, "\n") {
		if m := tickRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			last = max(last, n)
		}
	}
	return last
}

// followLogs runs a logs -f command against b. Once it has streamed a
// tick, a plain weir logs takes the log's last tick S; the follower must
// then go on to deliver S+2, in order, which only a stream that stays open
// and reads what is written later can do.
func followLogs(t *testing.T, c *Cluster, bin string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(c.DataDir, "admin.kubeconfig"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cancel()
	sc := bufio.NewScanner(out)
	last, target := 0, 0
	for sc.Scan() {
		m := tickRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if last != 0 && n != last+1 {
			t.Fatalf("%s %v: tick %d after tick %d", bin, args, n, last)
		}
		last = n
		if target == 0 {
			snap, errOut, code := c.run(t, "", weirBin, "logs", "duo", "-c", "b")
			if code != 0 {
				t.Fatalf("weir logs: exit %d: %s", code, errOut)
			}
			target = lastTick(snap) + 2
		}
		if last >= target {
			return
		}
	}
	t.Fatalf("%s %v: stream ended at tick %d before tick %d: %v", bin, args, last, target, ctx.Err())
}

package runtime

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/nodeagent/containerd/containerdtest"
	"weir.dev/weir/nodeagent/crilog"
)

// Exec runs in the container with its environment, working directory and
// user; streams, stdin's end, exit codes and a TTY work; a container
// that is not running is refused. ContainerLog finds the current and the
// previous attempt.
func TestExec(t *testing.T) {
	d := containerdtest.Start(t)
	n := newTestNode(t, d, "10.98.7.0/24")
	ctx := t.Context()
	pod := busyboxPod("ex", "echo attempt; sleep 3600")
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "GREETING", Value: "hello"}}
	pod.Spec.Containers[0].WorkingDir = "/tmp"
	uid := int64(1234)
	pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: &uid}
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", Command: []string{"true"}}}
	n.syncUntil(t, pod, 60*time.Second, func(st corev1.PodStatus) bool {
		return len(st.ContainerStatuses) == 1 && st.ContainerStatuses[0].State.Running != nil
	})

	run := func(t *testing.T, stdin string, tty bool, cmd ...string) (string, string, int, error) {
		t.Helper()
		var out, errOut bytes.Buffer
		sio := ExecIO{Stdout: &out, Stderr: &errOut, TTY: tty}
		if stdin != "" {
			sio.Stdin = strings.NewReader(stdin)
		}
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		code, err := n.rt.Exec(ctx, pod, "main", cmd, sio)
		return out.String(), errOut.String(), code, err
	}
	for _, tc := range []struct {
		name             string
		stdin            string
		tty              bool
		cmd              []string
		wantOut, wantErr string
		wantCode         int
	}{
		{name: "process settings", cmd: []string{"sh", "-c", "echo $GREETING; pwd; id -u"}, wantOut: "hello\n/tmp\n1234\n"},
		{name: "stderr and exit code", cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 7"}, wantOut: "out\n", wantErr: "err\n", wantCode: 7},
		{name: "stdin to its end", stdin: "a\nb\nc\n", cmd: []string{"wc", "-l"}, wantOut: "3\n"},
		{name: "tty", tty: true, cmd: []string{"sh", "-c", "tty; echo $TERM; echo err >&2"}, wantOut: "/dev/pts/0\r\nxterm\r\nerr\r\n"},
		{name: "same network as the container", cmd: []string{"sh", "-c", "ip -4 -o addr show eth0 | grep -c 10.98.7."}, wantOut: "1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code, err := run(t, tc.stdin, tc.tty, tc.cmd...)
			if err != nil || out != tc.wantOut || errOut != tc.wantErr || code != tc.wantCode {
				t.Fatalf("exec %v: code %d, err %v, stdout %q, stderr %q; want %d, %q, %q", tc.cmd, code, err, out, errOut, tc.wantCode, tc.wantOut, tc.wantErr)
			}
		})
	}
	if _, _, _, err := run(t, "", false, "no-such-command"); err == nil {
		t.Fatal("exec of a missing command succeeded")
	}
	var nre *NotRunningError
	if _, err := n.rt.Exec(ctx, pod, "init", []string{"true"}, ExecIO{Stdout: &bytes.Buffer{}}); !errors.As(err, &nre) {
		t.Fatalf("exec in the exited init container: %v, want NotRunningError", err)
	}

	lf, err := n.rt.ContainerLog(ctx, pod, "main", false)
	if err != nil || lf.Running == nil || !lf.Running(ctx) {
		t.Fatalf("current log: %+v %v (want a running attempt)", lf, err)
	}
	if b, _ := os.ReadFile(lf.Path); string(crilog.Decode(b)) != "attempt\n" {
		t.Fatalf("log %q", b)
	}
	var nle *NoLogError
	if _, err := n.rt.ContainerLog(ctx, pod, "main", true); !errors.As(err, &nle) || nle.Message != `previous terminated container "main" in pod "ex" not found` {
		t.Fatalf("previous log before a restart: %v", err)
	}
	lf, err = n.rt.ContainerLog(ctx, pod, "init", false)
	if err != nil || lf.Running != nil {
		t.Fatalf("log of the exited init container: %+v %v (want one that is not running)", lf, err)
	}
}

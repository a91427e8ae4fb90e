package runtime

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/nodeagent/containerd/containerdtest"
	"weir.dev/weir/nodeagent/crilog"
)

// records reads the CRI records of a log file; every line must be one.
func records(t *testing.T, path string) []crilog.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []crilog.Record
	for l := range strings.Lines(string(b)) {
		if !strings.HasSuffix(l, "\n") {
			t.Fatalf("%s ends in an unterminated line %q", path, l)
		}
		rec, err := crilog.ParseRecord([]byte(strings.TrimSuffix(l, "\n")))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, rec)
	}
	return out
}

// waitLog waits until the output in the log at path satisfies ok.
func waitLog(t *testing.T, path string, timeout time.Duration, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(path)
		out := string(crilog.Decode(b))
		if ok(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %s: not there within %v: %q", path, timeout, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestContainerLogFormat runs a container that writes to stdout and
// stderr in turns (each write waits for the test to see the one before
// in the log, so the order is the container's), a 40,000-byte line and a
// last line without a newline. The log file is in the CRI format: the
// turns in order with their stream tags, the long line as two 16 KiB P
// records and an F record, the last line as a P record, times in order
// and within the test's window; printed back, the output is exact, and
// since and timestamps work on it. The task's FIFOs are gone once it is
// reaped.
func TestContainerLogFormat(t *testing.T) {
	d := containerdtest.Start(t)
	n := newTestNode(t, d, "10.244.19.0/24")
	pod := busyboxPod("crilog", `step() { until [ -e /data/go$1 ]; do sleep 0.02; done; }
echo "out 1"; step 1; echo "err 1" >&2; step 2; echo "out 2"; step 3; echo "err 2" >&2; step 4
head -c 40000 /dev/zero | tr '\0' x; echo; printf 'no newline'`)
	data := n.withData(pod)
	began := time.Now()
	n.syncUntil(t, pod, 20*time.Second, func(st corev1.PodStatus) bool { return st.Phase != corev1.PodPending })
	path := n.rt.LogPath(pod.UID, "main", 0)
	for i, want := range []string{"out 1\n", "out 1\nerr 1\n", "out 1\nerr 1\nout 2\n", "out 1\nerr 1\nout 2\nerr 2\n"} {
		waitLog(t, path, 20*time.Second, func(s string) bool { return s == want })
		if err := os.WriteFile(filepath.Join(data, "go"+strconv.Itoa(i+1)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st := n.syncUntil(t, pod, 20*time.Second, phaseIs(corev1.PodSucceeded))
	ended := time.Now()
	if got := st.ContainerStatuses[0].State.Terminated; got == nil || got.ExitCode != 0 {
		t.Fatalf("container: %s", describe(st))
	}

	recs := records(t, path)
	long := strings.Repeat("x", 40000)
	type rec struct {
		stream  crilog.Stream
		partial bool
		content string
	}
	want := []rec{
		{crilog.Stdout, false, "out 1"}, {crilog.Stderr, false, "err 1"}, {crilog.Stdout, false, "out 2"}, {crilog.Stderr, false, "err 2"},
		{crilog.Stdout, true, long[:crilog.MaxRecord]}, {crilog.Stdout, true, long[crilog.MaxRecord : 2*crilog.MaxRecord]},
		{crilog.Stdout, false, long[2*crilog.MaxRecord:]}, {crilog.Stdout, true, "no newline"},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(recs), len(want), recs)
	}
	var last time.Time
	for i, r := range recs {
		if w := want[i]; r.Stream != w.stream || r.Partial != w.partial || string(r.Content) != w.content {
			t.Errorf("record %d: %s partial=%v %.40q…, want %s partial=%v %.40q…", i, r.Stream, r.Partial, r.Content, w.stream, w.partial, w.content)
		}
		if r.Time.Before(began.Add(-time.Second)) || r.Time.After(ended) || r.Time.Before(last) {
			t.Errorf("record %d at %v: out of order (last %v) or outside the test's %v…%v", i, r.Time, last, began, ended)
		}
		last = r.Time
	}

	b, _ := os.ReadFile(path)
	print := func(o crilog.Options) string {
		var out bytes.Buffer
		p := crilog.NewPrinter(o)
		for l := range strings.Lines(string(b)) {
			if err := p.Line(&out, []byte(strings.TrimSuffix(l, "\n")), true); err != nil {
				t.Fatal(err)
			}
		}
		return out.String()
	}
	if got, want := print(crilog.Options{}), "out 1\nerr 1\nout 2\nerr 2\n"+long+"\nno newline"; got != want {
		t.Errorf("printed %d bytes %.60q…, want %d bytes", len(got), got, len(want))
	}
	if got := print(crilog.Options{Since: recs[2].Time}); !strings.HasPrefix(got, "out 2\nerr 2\nxxx") {
		t.Errorf("since the third record: %.60q…", got)
	}
	ts := strings.Split(print(crilog.Options{Timestamps: true}), "\n")
	for i, r := range recs[:5] {
		if want := r.Time.UTC().Format(crilog.TimeFormatOut) + " " + string(r.Content[:min(len(r.Content), 5)]); !strings.HasPrefix(ts[i], want) {
			t.Errorf("line %d with timestamps: %.60q, want it to start %q", i, ts[i], want)
		}
	}
	if len(ts[4]) != len(recs[4].Time.UTC().Format(crilog.TimeFormatOut))+1+len(long) {
		t.Errorf("the long line printed with timestamps is %d bytes: one timestamp for its three records expected", len(ts[4]))
	}
	if _, err := os.Stat(n.rt.fifoDir(ContainerID(pod.UID, "main", 0))); !os.IsNotExist(err) {
		t.Errorf("the reaped task's FIFOs are still there: %v", err)
	}
}

// TestLogsSurviveRestart plays an agent restart while a container
// writes: the runtime stops copying (Close) without touching the task,
// the container writes on into the FIFOs, and a new Runtime over the
// same state attaches to them on its first look at the pod, once. The
// log has every line, in order, none twice.
func TestLogsSurviveRestart(t *testing.T) {
	d := containerdtest.Start(t)
	n := newTestNode(t, d, "10.244.20.0/24")
	pod := busyboxPod("relog", `i=0; while true; do i=$((i+1)); echo "line $i"; echo $i > /data/count
if [ -e /data/stop ]; then echo "last $i"; exit 0; fi; sleep 0.01; done`)
	data := n.withData(pod)
	n.syncUntil(t, pod, 20*time.Second, phaseIs(corev1.PodRunning))
	path := n.rt.LogPath(pod.UID, "main", 0)
	waitLog(t, path, 20*time.Second, func(s string) bool { return strings.Contains(s, "line 5\n") })
	if err := n.rt.Close(); err != nil {
		t.Fatal(err)
	}
	logged := lastLine(readLog(t, path))
	// The container goes on writing with no one copying.
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(data, "count"))
		if c, _ := strconv.Atoi(strings.TrimSpace(string(b))); c >= logged+50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container did not write on while its output was not copied (count %q, logged %d)", b, logged)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if now := lastLine(readLog(t, path)); now != logged {
		t.Fatalf("the log grew from line %d to %d while nothing copied", logged, now)
	}

	cfg := n.cfg
	cfg.Network = n.newNetwork(t, filepath.Join(filepath.Dir(n.cfg.StateDir), "ipam"))
	rt2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.rt = rt2
	id := ContainerID(pod.UID, "main", 0)
	for range 3 {
		if _, err := rt2.PodStatus(t.Context(), pod); err != nil {
			t.Fatal(err)
		}
	}
	first := rt2.copier(id)
	if first == nil {
		t.Fatal("the new runtime did not attach to the running container's output")
	}
	n.syncUntil(t, pod, 20*time.Second, phaseIs(corev1.PodRunning))
	if rt2.copier(id) != first {
		t.Fatal("the new runtime attached to the same task twice")
	}
	waitLog(t, path, 20*time.Second, func(s string) bool { return lastLine(s) > logged+50 })
	if err := os.WriteFile(filepath.Join(data, "stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	n.syncUntil(t, pod, 20*time.Second, phaseIs(corev1.PodSucceeded))
	out := readLog(t, path)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	total := len(lines) - 1
	for i, l := range lines[:total] {
		if l != fmt.Sprintf("line %d", i+1) {
			t.Fatalf("log line %d is %q: lines lost or repeated around the restart (last logged before it: %d)", i+1, l, logged)
		}
	}
	if lines[total] != fmt.Sprintf("last %d", total) {
		t.Fatalf("log ends %q after %d lines", lines[total], total)
	}
	if rt2.copier(id) != nil {
		t.Error("the reaped task's copier is still registered")
	}
	if _, err := os.Stat(rt2.fifoDir(id)); !os.IsNotExist(err) {
		t.Errorf("the reaped task's FIFOs are still there: %v", err)
	}
	t.Logf("%d lines, %d of them written while no runtime copied", total, total-logged)
}

// lastLine is N of the last "line N" in a log.
func lastLine(log string) int {
	last := 0
	for l := range strings.Lines(log) {
		if n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(l, "line "))); err == nil && strings.HasPrefix(l, "line ") {
			last = n
		}
	}
	return last
}

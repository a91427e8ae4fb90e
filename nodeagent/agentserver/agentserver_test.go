package agentserver

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weir.dev/weir/nodeagent/crilog"
	"weir.dev/weir/nodeagent/runtime"
)

func TestParseLogOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		query   string
		want    LogOptions
		wantErr string
	}{
		{name: "none", query: "", want: LogOptions{TailLines: -1}},
		{name: "all", query: "follow=true&previous=1&tailLines=3&limitBytes=10", want: LogOptions{Follow: true, Previous: true, TailLines: 3, LimitBytes: 10}},
		{name: "tail zero", query: "tailLines=0", want: LogOptions{TailLines: 0}},
		{name: "false flags", query: "follow=false&timestamps=false", want: LogOptions{TailLines: -1}},
		{name: "negative tail", query: "tailLines=-2", wantErr: `tailLines: "-2" is not a non-negative integer`},
		{name: "zero limit", query: "limitBytes=0", wantErr: `limitBytes: "0" is not a positive integer`},
		{name: "bad bool", query: "follow=yes", wantErr: `follow: "yes" is not a boolean`},
		{name: "timestamps", query: "timestamps=true", want: LogOptions{TailLines: -1, Timestamps: true}},
		{name: "since seconds", query: "sinceSeconds=10", want: LogOptions{TailLines: -1, SinceSeconds: 10}},
		{name: "since time", query: "sinceTime=2026-01-02T03:04:05Z", want: LogOptions{TailLines: -1, SinceTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}},
		{name: "zero since seconds", query: "sinceSeconds=0", wantErr: `sinceSeconds: "0" is not a positive integer`},
		{name: "bad since seconds", query: "sinceSeconds=1h", wantErr: `sinceSeconds: "1h" is not a positive integer`},
		{name: "bad since time", query: "sinceTime=yesterday", wantErr: `sinceTime: "yesterday" is not an RFC3339 time`},
		{name: "both since", query: "sinceSeconds=10&sinceTime=2026-01-02T03:04:05Z", wantErr: "at most one of `sinceTime` or `sinceSeconds` may be specified"},
		{name: "bad timestamps", query: "timestamps=maybe", wantErr: `timestamps: "maybe" is not a boolean`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			got, err := ParseLogOptions(q)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Fatalf("options (-want +got):\n%s", d)
			}
		})
	}
}

// TestCopyLog prints a CRI log file: contents, timestamps, since and
// limits over a file with a line split in P records, a raw line and an
// unterminated end; following, a record written in two pieces is printed
// once whole, and what comes before the container stops is printed.
func TestCopyLog(t *testing.T) {
	file := "2026-01-02T03:04:05.1Z stdout F one\n" +
		"2026-01-02T03:04:06Z stderr P half \n" +
		"2026-01-02T03:04:06.5Z stderr F and half\n" +
		"not a record\n" +
		"2026-01-02T03:04:07Z stdout F two\n" +
		"2026-01-02T03:04:08Z stdout P no newline"
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts crilog.Options
		tail int64
		want string
	}{
		{name: "all", want: "one\nhalf and half\nnot a record\ntwo\nno newline"},
		{name: "timestamps", opts: crilog.Options{Timestamps: true}, want: "2026-01-02T03:04:05.100000000Z one\n" +
			"2026-01-02T03:04:06.000000000Z half and half\nnot a record\n2026-01-02T03:04:07.000000000Z two\n2026-01-02T03:04:08.000000000Z no newline"},
		{name: "since", opts: crilog.Options{Since: time.Date(2026, 1, 2, 3, 4, 7, 0, time.UTC)}, want: "not a record\ntwo\nno newline"},
		{name: "tail counts records", tail: 3, want: "not a record\ntwo\nno newline"},
		{name: "limit", opts: crilog.Options{LimitBytes: 9}, want: "one\nhalf "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if tc.tail > 0 {
				off, err := TailOffset(f, int64(len(file)), tc.tail)
				if err != nil {
					t.Fatal(err)
				}
				f.Seek(off, 0)
			}
			var out bytes.Buffer
			err = copyLog(t.Context(), &out, func() {}, f, crilog.NewPrinter(tc.opts), false, nil)
			if err != nil && !errors.Is(err, crilog.ErrLimit) {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("printed %q\nwant    %q", out.String(), tc.want)
			}
		})
	}

	t.Run("follow", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "0.log")
		w, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		w.WriteString("2026-01-02T03:04:05Z stdout F first\n2026-01-02T03:04:06Z stdout F sec")
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var out safeBuffer
		var running atomic.Bool
		running.Store(true)
		done := make(chan error, 1)
		go func() {
			done <- copyLog(t.Context(), &out, func() {}, f, crilog.NewPrinter(crilog.Options{}), true,
				func(context.Context) bool { return running.Load() })
		}()
		waitFor(t, &out, "first\n")
		time.Sleep(3 * followPoll) // the half record must stay unprinted over polls
		if got := out.String(); got != "first\n" {
			t.Fatalf("printed %q before the record was complete", got)
		}
		w.WriteString("ond\n2026-01-02T03:04:07Z stdout F last\n")
		running.Store(false)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != "first\nsecond\nlast\n" {
			t.Fatalf("followed %q", got)
		}
	})
}

type safeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func waitFor(t *testing.T, b *safeBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.String() != want {
		if time.Now().After(deadline) {
			t.Fatalf("printed %q, want %q", b.String(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTailOffset(t *testing.T) {
	long := strings.Repeat("x", 20000) + "\n"
	for _, tc := range []struct {
		name, log string
		n         int64
		want      string
	}{
		{"last of three", "a\nb\nc\n", 1, "c\n"},
		{"two of three", "a\nb\nc\n", 2, "b\nc\n"},
		{"more than there are", "a\nb\n", 5, "a\nb\n"},
		{"zero", "a\nb\n", 0, ""},
		{"unterminated last line", "a\nb\nc", 1, "c"},
		{"unterminated, two", "a\nb\nc", 2, "b\nc"},
		{"empty", "", 3, ""},
		{"empty lines", "a\n\n\n", 2, "\n\n"},
		{"lines longer than a chunk", long + long + "end\n", 2, long + "end\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := strings.NewReader(tc.log)
			off, err := TailOffset(r, r.Size(), tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.log[off:]; got != tc.want {
				t.Fatalf("tail %d of %q = %q, want %q", tc.n, tc.log, got, tc.want)
			}
		})
	}
}

func TestParseExecOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		query   string
		want    ExecOptions
		wantErr string
	}{
		{name: "output", query: "command=ls&command=-l&output=1&error=1", want: ExecOptions{Command: []string{"ls", "-l"}, Stdout: true, Stderr: true}},
		{name: "tty drops stderr", query: "command=sh&input=1&output=1&error=1&tty=1", want: ExecOptions{Command: []string{"sh"}, Stdin: true, Stdout: true, TTY: true}},
		{name: "no command", query: "output=1", wantErr: "command: you must specify at least one command for the container"},
		{name: "no streams", query: "command=true", wantErr: "you must specify at least 1 of stdin, stdout, stderr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			got, err := ParseExecOptions(q)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Fatalf("options (-want +got):\n%s", d)
			}
		})
	}
}

func TestExecStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int
		err  error
		want metav1.Status
	}{
		{name: "success", want: metav1.Status{Status: metav1.StatusSuccess}},
		{name: "exit 3", code: 3, want: metav1.Status{Status: metav1.StatusFailure, Reason: "NonZeroExitCode",
			Message: "command terminated with non-zero exit code: command terminated with exit code 3",
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: "ExitCode", Message: "3"}}}}},
		{name: "not running", err: &runtime.NotRunningError{Message: `container "a" in pod "p" is not running`},
			want: metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonBadRequest, Code: 400, Message: `container "a" in pod "p" is not running`}},
		{name: "runtime failure", err: errors.New("boom"),
			want: metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonInternalError, Code: 500, Message: "error executing command in container: boom"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.want.Kind, tc.want.APIVersion = "Status", "v1"
			if d := cmp.Diff(tc.want, ExecStatus(tc.code, tc.err)); d != "" {
				t.Fatalf("status (-want +got):\n%s", d)
			}
		})
	}
}

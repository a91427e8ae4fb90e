package agentserver

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
		{name: "timestamps", query: "timestamps=true", wantErr: "timestamps: weir's container logs do not record a time per line"},
		{name: "since", query: "sinceSeconds=10", wantErr: "sinceSeconds: weir's container logs do not record a time per line"},
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

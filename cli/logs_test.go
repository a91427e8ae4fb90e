package cli

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestLogsSinceParams turns --since and --since-time into the query
// kubectl sends: whole seconds (at least one), an RFC3339 time in UTC.
func TestLogsSinceParams(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    LogsOptions
		want    map[string]string
		wantErr string
	}{
		{name: "none", want: map[string]string{}},
		{name: "an hour", opts: LogsOptions{Since: time.Hour}, want: map[string]string{"sinceSeconds": "3600"}},
		{name: "rounded", opts: LogsOptions{Since: 1500 * time.Millisecond}, want: map[string]string{"sinceSeconds": "2"}},
		{name: "at least a second", opts: LogsOptions{Since: 100 * time.Millisecond}, want: map[string]string{"sinceSeconds": "1"}},
		{name: "time", opts: LogsOptions{SinceTime: "2026-01-02T04:04:05.25+01:00"}, want: map[string]string{"sinceTime": "2026-01-02T03:04:05Z"}},
		{name: "both", opts: LogsOptions{Since: time.Hour, SinceTime: "2026-01-02T03:04:05Z"}, wantErr: "at most one of `sinceTime` or `sinceSeconds` may be specified"},
		{name: "negative", opts: LogsOptions{Since: -time.Second}, wantErr: "--since must be greater than 0"},
		{name: "not a time", opts: LogsOptions{SinceTime: "2026-01-02"}, wantErr: `--since-time: "2026-01-02" is not an RFC3339 time`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.opts.sinceParams()
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("params (-want +got):\n%s", d)
			}
		})
	}
}

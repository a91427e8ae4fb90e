package agentserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weir.dev/weir/nodeagent/crilog"
	"weir.dev/weir/nodeagent/runtime"
)

// LogOptions are the query parameters of a log request.
type LogOptions struct {
	Follow   bool
	Previous bool
	// TailLines is the number of last records (file lines) to start
	// with, as the kubelet counts them; -1 is all.
	TailLines int64
	// LimitBytes stops the answer after that many bytes of output; 0 is
	// no limit.
	LimitBytes int64
	// Timestamps prefixes each line with the time it was written.
	Timestamps bool
	// SinceSeconds and SinceTime skip records older than that; at most
	// one is set.
	SinceSeconds int64
	SinceTime    time.Time
}

// Since is the time before which records are skipped, or zero.
func (o LogOptions) Since(now time.Time) time.Time {
	if o.SinceSeconds > 0 {
		return now.Add(-time.Duration(o.SinceSeconds) * time.Second)
	}
	return o.SinceTime
}

// ParseLogOptions reads the kubelet's log query: follow, previous,
// tailLines, limitBytes, timestamps, sinceSeconds, sinceTime, validated
// as the API server validates PodLogOptions.
func ParseLogOptions(q url.Values) (LogOptions, error) {
	o := LogOptions{TailLines: -1}
	var err error
	if o.Follow, err = boolParam(q, "follow"); err != nil {
		return o, err
	}
	if o.Previous, err = boolParam(q, "previous"); err != nil {
		return o, err
	}
	if o.Timestamps, err = boolParam(q, "timestamps"); err != nil {
		return o, err
	}
	if v := q.Get("tailLines"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return o, fmt.Errorf("tailLines: %q is not a non-negative integer", v)
		}
		o.TailLines = n
	}
	if v := q.Get("limitBytes"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return o, fmt.Errorf("limitBytes: %q is not a positive integer", v)
		}
		o.LimitBytes = n
	}
	if q.Get("sinceSeconds") != "" && q.Get("sinceTime") != "" {
		return o, errors.New("at most one of `sinceTime` or `sinceSeconds` may be specified")
	}
	if v := q.Get("sinceSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return o, fmt.Errorf("sinceSeconds: %q is not a positive integer", v)
		}
		o.SinceSeconds = n
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return o, fmt.Errorf("sinceTime: %q is not an RFC3339 time", v)
		}
		o.SinceTime = t
	}
	return o, nil
}

func boolParam(q url.Values, name string) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: %q is not a boolean", name, v)
	}
	return b, nil
}

// followPoll is how often a followed log is checked for growth.
const followPoll = 100 * time.Millisecond

func (s *Server) serveLogs(w http.ResponseWriter, r *http.Request) {
	pod, container, err := s.pod(r)
	if err != nil {
		writeStatus(w, err)
		return
	}
	o, err := ParseLogOptions(r.URL.Query())
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	lf, err := s.cfg.Runtime.ContainerLog(r.Context(), pod, container, o.Previous)
	if nle := (*runtime.NoLogError)(nil); errors.As(err, &nle) {
		writeStatus(w, apierrors.NewBadRequest(nle.Message))
		return
	}
	if err != nil {
		writeStatus(w, err)
		return
	}
	f, err := os.Open(lf.Path)
	if err != nil {
		writeStatus(w, fmt.Errorf("open log of container %q: %w", container, err))
		return
	}
	defer f.Close()
	if o.TailLines >= 0 {
		fi, err := f.Stat()
		if err != nil {
			writeStatus(w, fmt.Errorf("read log of container %q: %w", container, err))
			return
		}
		off, err := TailOffset(f, fi.Size(), o.TailLines)
		if err != nil {
			writeStatus(w, fmt.Errorf("read log of container %q: %w", container, err))
			return
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			writeStatus(w, err)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	p := crilog.NewPrinter(crilog.Options{Since: o.Since(time.Now()), Timestamps: o.Timestamps, LimitBytes: o.LimitBytes})
	flush := func() {
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
	}
	follow := o.Follow && lf.Running != nil
	if err := copyLog(r.Context(), w, flush, f, p, follow, lf.Running); err != nil && !errors.Is(err, crilog.ErrLimit) {
		s.cfg.Logger.Debug("log stream ended", slog.Any("error", err))
	}
}

// copyLog prints the records of f, from where it stands, to out through
// p; following, it keeps reading as the file grows until the container
// stops running (then prints what is left) or ctx ends. A last line
// without its newline is printed only once it is complete, or at the
// end.
func copyLog(ctx context.Context, out io.Writer, flush func(), f *os.File, p *crilog.Printer, follow bool, running func(context.Context) bool) error {
	r := bufio.NewReaderSize(f, 64<<10)
	var line []byte // a line longer than r's buffer, or incomplete at EOF
	for {
		chunk, err := r.ReadSlice('\n')
		switch {
		case err == nil:
			chunk = chunk[:len(chunk)-1]
			if len(line) > 0 {
				line = append(line, chunk...)
				chunk = line
			}
			if err := p.Line(out, chunk, true); err != nil {
				return err
			}
			line = line[:0]
			continue
		case errors.Is(err, bufio.ErrBufferFull):
			line = append(line, chunk...)
			continue
		case err != io.EOF:
			return err
		}
		line = append(line, chunk...)
		if !follow {
			if len(line) > 0 {
				return p.Line(out, line, false)
			}
			return nil
		}
		flush()
		if !running(ctx) {
			// Read on to the end once more: output written just before
			// the exit.
			follow = false
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(followPoll):
		}
	}
}

// TailOffset returns the offset where the last n lines of f (size bytes
// long) begin. A last line without a newline counts as a line.
func TailOffset(f io.ReaderAt, size, n int64) (int64, error) {
	if n == 0 {
		return size, nil
	}
	const chunk = 8 << 10
	buf := make([]byte, chunk)
	pos := size
	lines := int64(0)
	// A trailing newline ends the last line rather than starting a new one.
	skipLast := true
	for pos > 0 {
		sz := int64(chunk)
		if pos < sz {
			sz = pos
		}
		pos -= sz
		if _, err := f.ReadAt(buf[:sz], pos); err != nil && err != io.EOF {
			return 0, err
		}
		for i := sz - 1; i >= 0; i-- {
			if buf[i] != '\n' {
				skipLast = false
				continue
			}
			if skipLast {
				skipLast = false
				continue
			}
			lines++
			if lines == n {
				return pos + i + 1, nil
			}
		}
	}
	return 0, nil
}

func jsonEncode(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

func statusObject(st metav1.Status) metav1.Status {
	st.Kind, st.APIVersion = "Status", "v1"
	return st
}

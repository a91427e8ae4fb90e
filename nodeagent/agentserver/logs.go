package agentserver

import (
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

	"weir.dev/weir/nodeagent/runtime"
)

// LogOptions are the query parameters of a log request.
type LogOptions struct {
	Follow   bool
	Previous bool
	// TailLines is the number of last lines to start with; -1 is all.
	TailLines int64
	// LimitBytes stops the answer after that many bytes; 0 is no limit.
	LimitBytes int64
}

// ParseLogOptions reads the kubelet's log query: follow, previous,
// tailLines, limitBytes. timestamps, sinceSeconds and sinceTime need a
// time per line, which weir's log files (the container's raw output) do
// not record, so they are refused rather than ignored.
func ParseLogOptions(q url.Values) (LogOptions, error) {
	o := LogOptions{TailLines: -1}
	var err error
	if o.Follow, err = boolParam(q, "follow"); err != nil {
		return o, err
	}
	if o.Previous, err = boolParam(q, "previous"); err != nil {
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
	ts, err := boolParam(q, "timestamps")
	if err != nil {
		return o, err
	}
	if ts {
		return o, errors.New("timestamps: weir's container logs do not record a time per line")
	}
	for _, p := range []string{"sinceSeconds", "sinceTime"} {
		if q.Get(p) != "" {
			return o, fmt.Errorf("%s: weir's container logs do not record a time per line", p)
		}
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
	var out io.Writer = w
	if o.LimitBytes > 0 {
		out = &limitWriter{w: w, n: o.LimitBytes}
	}
	follow := o.Follow && lf.Running != nil
	if err := copyLog(r.Context(), out, w, f, follow, lf.Running); err != nil && !errors.Is(err, errLimit) {
		s.cfg.Logger.Debug("log stream ended", slog.Any("error", err))
	}
}

var errLimit = errors.New("limitBytes reached")

type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errLimit
	}
	cut := false
	if int64(len(p)) > l.n {
		p, cut = p[:l.n], true
	}
	n, err := l.w.Write(p)
	l.n -= int64(n)
	if err == nil && cut {
		err = errLimit
	}
	return n, err
}

// copyLog copies f to out; following, it keeps reading as the file grows
// until the container stops running (then drains what is left) or ctx
// ends.
func copyLog(ctx context.Context, out io.Writer, w http.ResponseWriter, f *os.File, follow bool, running func(context.Context) bool) error {
	flush := func() {
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := out.Write(buf[:n]); werr != nil {
				return werr
			}
			continue
		}
		if err != nil && err != io.EOF {
			return err
		}
		if !follow {
			return nil
		}
		flush()
		if !running(ctx) {
			// One last read: output written just before the exit.
			_, err := io.Copy(out, f)
			flush()
			return err
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

package crilog

import (
	"bytes"
	"io"
	"sync"
	"time"
)

// Writer writes the records of one container attempt to one file, for
// all its streams. Each record goes out whole in one Write call under a
// lock, so records of stdout and stderr never interleave; its time is
// taken under the same lock and never goes back in file order (a clock
// stepping back repeats the last time). Safe for concurrent use by the
// streams' StreamWriters.
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	now     func() time.Time
	last    time.Time
	buf     []byte
	onError func(error)
	failed  bool
}

// NewWriter returns a Writer to w. now is the clock (nil: time.Now);
// onError, if set, is told about the first failed write. Writes go on
// after a failure: the container's output must be drained whatever
// happens to the file, or the container blocks.
func NewWriter(w io.Writer, now func() time.Time, onError func(error)) *Writer {
	if now == nil {
		now = time.Now
	}
	return &Writer{w: w, now: now, onError: onError}
}

func (w *Writer) record(s Stream, partial bool, parts ...[]byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.now().Round(0) // wall clock only: that is what the file says
	if t.Before(w.last) {
		t = w.last
	}
	w.last = t
	w.buf = AppendRecord(w.buf[:0], t, s, partial, parts...)
	if _, err := w.w.Write(w.buf); err != nil && !w.failed {
		w.failed = true
		if w.onError != nil {
			w.onError(err)
		}
	}
	if cap(w.buf) > 4*MaxRecord {
		w.buf = nil // one huge record must not pin its buffer
	}
}

// Stream returns the writer of stream s. A StreamWriter is used by one
// goroutine at a time.
func (w *Writer) Stream(s Stream) *StreamWriter {
	return &StreamWriter{w: w, s: s, max: MaxRecord}
}

// StreamWriter splits one stream's bytes into records: an F record per
// line, P records for each MaxRecord bytes of a longer line. A line's
// start is held until its newline arrives (or MaxRecord bytes of it, or
// Flush), as containerd holds it, so short writes of one line still make
// one record.
type StreamWriter struct {
	w       *Writer
	s       Stream
	max     int
	pending []byte
}

// Write turns p into records. It never fails: see NewWriter.
func (sw *StreamWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		// More than a record's worth without a newline: out as P. A
		// line of exactly max bytes stays whole if its newline follows.
		for len(sw.pending)+len(seg) > sw.max {
			take := sw.max - len(sw.pending)
			sw.w.record(sw.s, true, sw.pending, seg[:take])
			sw.pending, seg = sw.pending[:0], seg[take:]
		}
		if i < 0 {
			sw.pending = append(sw.pending, seg...)
			break
		}
		sw.w.record(sw.s, false, sw.pending, seg)
		sw.pending = sw.pending[:0]
		p = p[i+1:]
	}
	return n, nil
}

// Flush writes a held line start as a P record: at the stream's end (a
// last line without a newline, which containerd also writes as P) or when
// copying stops, so that nothing read is lost. A later write continues
// the line in further records.
func (sw *StreamWriter) Flush() {
	if len(sw.pending) > 0 {
		sw.w.record(sw.s, true, sw.pending)
		sw.pending = sw.pending[:0]
	}
}

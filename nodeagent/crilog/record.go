package crilog

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// Stream is the stream a record came from.
type Stream string

// The two streams of a container.
const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// MaxRecord is the most content bytes one record carries; a longer line
// is split into P records and an F record (containerd's default
// max_container_log_line_size).
const MaxRecord = 16 << 10

// timeFormat is what records carry: RFC3339Nano in UTC, as containerd
// writes it (trailing zeros of the fraction dropped).
const timeFormat = time.RFC3339Nano

// timeFormatIn parses any fraction width.
const timeFormatIn = "2006-01-02T15:04:05.999999999Z07:00"

// TimeFormatOut is how Printer prefixes timestamps: RFC3339 with a fixed
// nine-digit fraction, as the kubelet prints them, so they line up.
const TimeFormatOut = "2006-01-02T15:04:05.000000000Z07:00"

// Record is one decoded log line.
type Record struct {
	Time    time.Time
	Stream  Stream
	Partial bool
	// Content is what the container wrote, without the newline that ends
	// an F record's line.
	Content []byte
}

// AppendRecord appends the encoding of one record, its content the
// concatenation of parts, newline included, to b.
func AppendRecord(b []byte, t time.Time, s Stream, partial bool, parts ...[]byte) []byte {
	b = t.UTC().AppendFormat(b, timeFormat)
	b = append(b, ' ')
	b = append(b, s...)
	if partial {
		b = append(b, " P "...)
	} else {
		b = append(b, " F "...)
	}
	for _, p := range parts {
		b = append(b, p...)
	}
	return append(b, '\n')
}

// ErrMalformed is wrapped by ParseRecord's errors.
var ErrMalformed = errors.New("crilog: not a CRI log record")

// ParseRecord decodes one line of a log file, without its newline. The
// record's Content aliases line. Tags after the first (P:x, F:y, which
// the format reserves) are ignored, as the kubelet ignores them.
func ParseRecord(line []byte) (Record, error) {
	var r Record
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return r, fmt.Errorf("%w: no time", ErrMalformed)
	}
	t, err := time.Parse(timeFormatIn, string(ts))
	if err != nil {
		return r, fmt.Errorf("%w: time %q", ErrMalformed, ts)
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok || (Stream(stream) != Stdout && Stream(stream) != Stderr) {
		return r, fmt.Errorf("%w: stream %q", ErrMalformed, stream)
	}
	tags, content, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return r, fmt.Errorf("%w: no tag", ErrMalformed)
	}
	tag, _, _ := bytes.Cut(tags, []byte{':'})
	switch string(tag) {
	case "P":
		r.Partial = true
	case "F":
	default:
		return r, fmt.Errorf("%w: tag %q", ErrMalformed, tags)
	}
	r.Time, r.Stream, r.Content = t, Stream(stream), content
	return r, nil
}

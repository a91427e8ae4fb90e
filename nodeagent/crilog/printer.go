package crilog

import (
	"bytes"
	"errors"
	"io"
	"time"
)

// Options shape what a Printer prints, as PodLogOptions does.
type Options struct {
	// Since skips records older than it (zero: none).
	Since time.Time
	// Timestamps prefixes each line with its record's time and a space.
	Timestamps bool
	// LimitBytes stops the output after that many bytes, timestamps
	// included (0: no limit).
	LimitBytes int64
}

// ErrLimit is returned by Printer.Line once Options.LimitBytes bytes are
// out; it ends the output, it is not a failure.
var ErrLimit = errors.New("crilog: limitBytes reached")

// Printer turns the lines of a log file back into the container's output.
// It is used by one goroutine.
type Printer struct {
	opts   Options
	remain int64
	// midLine is set per stream once a P record of a line is printed:
	// the rest of the line gets no timestamp of its own, as the kubelet
	// prints one per line (it tracks this across streams; per stream
	// keeps stdout's timestamps when stderr interleaves).
	midLine [2]bool
	buf     []byte
}

// NewPrinter returns a Printer for o.
func NewPrinter(o Options) *Printer {
	p := &Printer{opts: o, remain: -1}
	if o.LimitBytes > 0 {
		p.remain = o.LimitBytes
	}
	return p
}

// Line prints one line of a log file to w: line is without its newline,
// complete says whether it had one. A record prints its content, a
// newline after an F record, and with Timestamps its time first. A line
// that is not a record (a file an older weir wrote with the raw output)
// is printed as it is: it has no time, so neither Since nor Timestamps
// apply to it. Line returns ErrLimit once LimitBytes are out, or w's
// error.
func (p *Printer) Line(w io.Writer, line []byte, complete bool) error {
	if p.remain == 0 {
		return ErrLimit
	}
	p.buf = p.buf[:0]
	rec, err := ParseRecord(line)
	if err != nil {
		p.buf = append(p.buf, line...)
		if complete {
			p.buf = append(p.buf, '\n')
		}
	} else {
		i := 0
		if rec.Stream == Stderr {
			i = 1
		}
		if rec.Time.Before(p.opts.Since) {
			// The first piece printed of a line gets the timestamp.
			p.midLine[i] = false
			return nil
		}
		first := !p.midLine[i]
		p.midLine[i] = rec.Partial
		if p.opts.Timestamps && first {
			p.buf = rec.Time.UTC().AppendFormat(p.buf, TimeFormatOut)
			p.buf = append(p.buf, ' ')
		}
		p.buf = append(p.buf, rec.Content...)
		if !rec.Partial {
			p.buf = append(p.buf, '\n')
		}
	}
	out := p.buf
	if p.remain >= 0 && int64(len(out)) > p.remain {
		out = out[:p.remain]
	}
	n, err := w.Write(out)
	if p.remain >= 0 {
		p.remain -= int64(n)
	}
	if err != nil {
		return err
	}
	if p.remain == 0 {
		return ErrLimit
	}
	return nil
}

// Decode returns the output the log file contents data stand for, as a
// Printer without options prints it.
func Decode(data []byte) []byte {
	var out bytes.Buffer
	p := NewPrinter(Options{})
	for len(data) > 0 {
		line, rest, complete := bytes.Cut(data, []byte{'\n'})
		_ = p.Line(&out, line, complete) // a bytes.Buffer does not fail
		data = rest
	}
	return out.Bytes()
}

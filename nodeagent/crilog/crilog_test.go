package crilog

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// clock returns times 1 ms apart from 2026-01-02T03:04:05.5Z on.
func clock() func() time.Time {
	t := time.Date(2026, 1, 2, 3, 4, 5, 500_000_000, time.UTC)
	return func() time.Time {
		t = t.Add(time.Millisecond)
		return t
	}
}

type write struct {
	s    Stream
	data string
}

// TestWriter checks the file lines writes make: a line per record, P
// records for long lines and for a line start flushed at the end, the
// two streams tagged and never mixed within a record.
func TestWriter(t *testing.T) {
	long := strings.Repeat("x", MaxRecord)
	for _, tc := range []struct {
		name   string
		writes []write
		flush  bool
		want   []string
	}{
		{name: "lines", writes: []write{{Stdout, "one\ntwo\n"}}, want: []string{
			"2026-01-02T03:04:05.501Z stdout F one",
			"2026-01-02T03:04:05.502Z stdout F two",
		}},
		{name: "a line in pieces is one record", writes: []write{{Stdout, "he"}, {Stdout, "llo"}, {Stdout, " world\n"}}, want: []string{
			"2026-01-02T03:04:05.501Z stdout F hello world",
		}},
		{name: "empty line", writes: []write{{Stdout, "\n\n"}}, want: []string{
			"2026-01-02T03:04:05.501Z stdout F ",
			"2026-01-02T03:04:05.502Z stdout F ",
		}},
		{name: "streams interleave by line", writes: []write{{Stdout, "out 1\nout "}, {Stderr, "err 1\n"}, {Stdout, "2\n"}}, want: []string{
			"2026-01-02T03:04:05.501Z stdout F out 1",
			"2026-01-02T03:04:05.502Z stderr F err 1",
			"2026-01-02T03:04:05.503Z stdout F out 2",
		}},
		{name: "carriage returns are content", writes: []write{{Stdout, "a\r\n"}}, want: []string{
			"2026-01-02T03:04:05.501Z stdout F a\r",
		}},
		{name: "unterminated end is P", writes: []write{{Stdout, "done\nprompt> "}}, flush: true, want: []string{
			"2026-01-02T03:04:05.501Z stdout F done",
			"2026-01-02T03:04:05.502Z stdout P prompt> ",
		}},
		{name: "exactly MaxRecord stays whole", writes: []write{{Stdout, long + "\n"}}, want: []string{
			"2026-01-02T03:04:05.501Z stdout F " + long,
		}},
		{name: "MaxRecord+1 splits", writes: []write{{Stdout, long + "y\n"}}, want: []string{
			"2026-01-02T03:04:05.501Z stdout P " + long,
			"2026-01-02T03:04:05.502Z stdout F y",
		}},
		{name: "MaxRecord then newline in the next write", writes: []write{{Stdout, long}, {Stdout, "\n"}}, want: []string{
			"2026-01-02T03:04:05.501Z stdout F " + long,
		}},
		{name: "MaxRecord then more in the next write", writes: []write{{Stdout, long}, {Stdout, "z\n"}}, want: []string{
			"2026-01-02T03:04:05.501Z stdout P " + long,
			"2026-01-02T03:04:05.502Z stdout F z",
		}},
		{name: "two and a half records", writes: []write{{Stdout, long[:100]}, {Stdout, long[100:] + long + "tail"}}, flush: true, want: []string{
			"2026-01-02T03:04:05.501Z stdout P " + long,
			"2026-01-02T03:04:05.502Z stdout P " + long,
			"2026-01-02T03:04:05.503Z stdout P tail",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var file bytes.Buffer
			w := NewWriter(&file, clock(), nil)
			streams := map[Stream]*StreamWriter{Stdout: w.Stream(Stdout), Stderr: w.Stream(Stderr)}
			for _, wr := range tc.writes {
				streams[wr.s].Write([]byte(wr.data))
			}
			if tc.flush {
				streams[Stdout].Flush()
				streams[Stderr].Flush()
			}
			got := strings.Split(strings.TrimSuffix(file.String(), "\n"), "\n")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("file lines (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWriterClockBack keeps file times in order when the clock steps back.
func TestWriterClockBack(t *testing.T) {
	times := []time.Time{time.Date(2026, 1, 1, 0, 0, 2, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC)}
	var file bytes.Buffer
	w := NewWriter(&file, func() time.Time { t := times[0]; times = times[1:]; return t }, nil)
	w.Stream(Stdout).Write([]byte("a\nb\n"))
	want := "2026-01-01T00:00:02Z stdout F a\n2026-01-01T00:00:02Z stdout F b\n"
	if file.String() != want {
		t.Errorf("file %q, want %q", file.String(), want)
	}
}

type failing struct{ n int }

func (f *failing) Write(p []byte) (int, error) {
	f.n++
	return 0, errors.New("disk full")
}

// TestWriterKeepsDraining reports the first failed write once and goes on.
func TestWriterKeepsDraining(t *testing.T) {
	var errs []error
	f := &failing{}
	w := NewWriter(f, clock(), func(err error) { errs = append(errs, err) })
	if n, err := w.Stream(Stdout).Write([]byte("a\nb\n")); n != 4 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if f.n != 2 || len(errs) != 1 {
		t.Errorf("%d writes, %d errors reported; want 2, 1", f.n, len(errs))
	}
}

func TestParseRecord(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Record
		bad  bool
	}{
		{line: "2016-10-06T00:17:09.669794202Z stdout P log content 1",
			want: Record{Time: time.Date(2016, 10, 6, 0, 17, 9, 669794202, time.UTC), Stream: Stdout, Partial: true, Content: []byte("log content 1")}},
		{line: "2016-10-06T00:17:09.669794203Z stderr F log content 2",
			want: Record{Time: time.Date(2016, 10, 6, 0, 17, 9, 669794203, time.UTC), Stream: Stderr, Content: []byte("log content 2")}},
		{line: "2016-10-06T00:17:09Z stdout F ", want: Record{Time: time.Date(2016, 10, 6, 0, 17, 9, 0, time.UTC), Stream: Stdout, Content: []byte{}}},
		{line: "2016-10-06T02:17:09.5+02:00 stdout F:x two  spaces",
			want: Record{Time: time.Date(2016, 10, 6, 0, 17, 9, 500_000_000, time.UTC), Stream: Stdout, Content: []byte("two  spaces")}},
		{line: "", bad: true},
		{line: "hello world", bad: true},
		{line: "2016-10-06T00:17:09Z stdin F x", bad: true},
		{line: "2016-10-06T00:17:09Z stdout X x", bad: true},
		{line: "2016-10-06T00:17:09Z stdout F", bad: true},
		{line: "yesterday stdout F x", bad: true},
	} {
		got, err := ParseRecord([]byte(tc.line))
		if tc.bad {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseRecord(%q) = %+v, %v; want ErrMalformed", tc.line, got, err)
			}
			continue
		}
		if err != nil || !got.Time.Equal(tc.want.Time) || got.Stream != tc.want.Stream || got.Partial != tc.want.Partial ||
			!bytes.Equal(got.Content, tc.want.Content) {
			t.Errorf("ParseRecord(%q) = %+v, %v; want %+v", tc.line, got, err, tc.want)
		}
	}
}

func TestPrinter(t *testing.T) {
	file := []string{
		"2026-01-02T03:04:05.1Z stdout F one",
		"2026-01-02T03:04:06Z stderr P err-",
		"2026-01-02T03:04:06.2Z stdout P two-",
		"2026-01-02T03:04:06.3Z stderr F line",
		"2026-01-02T03:04:07Z stdout F end",
		"raw line from an older weir",
		"2026-01-02T03:04:08Z stdout P no newline",
	}
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{name: "content", want: "one\nerr-two-line\nend\nraw line from an older weir\nno newline"},
		{name: "timestamps once per line", opts: Options{Timestamps: true}, want: "2026-01-02T03:04:05.100000000Z one\n" +
			"2026-01-02T03:04:06.000000000Z err-2026-01-02T03:04:06.200000000Z two-line\n" +
			"end\nraw line from an older weir\n2026-01-02T03:04:08.000000000Z no newline"},
		{name: "since", opts: Options{Since: time.Date(2026, 1, 2, 3, 4, 6, 200_000_000, time.UTC)},
			want: "two-line\nend\nraw line from an older weir\nno newline"},
		{name: "since and timestamps: the first piece printed of a line has one", opts: Options{Since: time.Date(2026, 1, 2, 3, 4, 6, 300_000_000, time.UTC), Timestamps: true},
			want: "2026-01-02T03:04:06.300000000Z line\n2026-01-02T03:04:07.000000000Z end\nraw line from an older weir\n2026-01-02T03:04:08.000000000Z no newline"},
		{name: "limit", opts: Options{LimitBytes: 6}, want: "one\ner"},
		{name: "limit with timestamps", opts: Options{LimitBytes: 35, Timestamps: true}, want: "2026-01-02T03:04:05.100000000Z one\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			p := NewPrinter(tc.opts)
			var err error
			for i, l := range file {
				if err = p.Line(&out, []byte(l), i < len(file)-1); err != nil {
					break
				}
			}
			if tc.opts.LimitBytes > 0 {
				if !errors.Is(err, ErrLimit) {
					t.Errorf("err %v, want ErrLimit", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("printed %q\nwant    %q", out.String(), tc.want)
			}
		})
	}
}

// TestRoundTrip writes random output in random pieces to both streams and
// decodes the file: each stream's bytes come back exactly.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		var file bytes.Buffer
		w := NewWriter(&file, clock(), nil)
		sw := map[Stream]*StreamWriter{Stdout: w.Stream(Stdout), Stderr: w.Stream(Stderr)}
		want := map[Stream]*bytes.Buffer{Stdout: {}, Stderr: {}}
		for range 40 {
			s := Stdout
			if rng.IntN(2) == 1 {
				s = Stderr
			}
			b := make([]byte, rng.IntN(3*MaxRecord))
			for i := range b {
				b[i] = "ab \n\r\t"[rng.IntN(6)]
				if rng.IntN(5000) == 0 {
					b[i] = byte(rng.IntN(256))
				}
			}
			sw[s].Write(b)
			want[s].Write(b)
		}
		sw[Stdout].Flush()
		sw[Stderr].Flush()
		got := map[Stream]*bytes.Buffer{Stdout: {}, Stderr: {}}
		lines := strings.Split(strings.TrimSuffix(file.String(), "\n"), "\n")
		for _, l := range lines {
			rec, err := ParseRecord([]byte(l))
			if err != nil {
				t.Fatalf("round %d: %v in %q", round, err, l)
			}
			if len(rec.Content) > MaxRecord {
				t.Fatalf("round %d: record of %d bytes", round, len(rec.Content))
			}
			got[rec.Stream].Write(rec.Content)
			if !rec.Partial {
				got[rec.Stream].WriteByte('\n')
			}
		}
		for _, s := range []Stream{Stdout, Stderr} {
			if !bytes.Equal(got[s].Bytes(), want[s].Bytes()) {
				t.Fatalf("round %d: %s differs after a round trip (%d bytes, want %d)", round, s, got[s].Len(), want[s].Len())
			}
		}
		if s := Decode(file.Bytes()); len(s) != want[Stdout].Len()+want[Stderr].Len() {
			t.Fatalf("round %d: Decode gives %d bytes, want %d", round, len(s), want[Stdout].Len()+want[Stderr].Len())
		}
	}
}

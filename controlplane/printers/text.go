package printers

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// PrintOptions say how a Table is laid out, as kubectl's flags do.
type PrintOptions struct {
	Wide          bool     // -o wide: priority 1 columns too
	NoHeaders     bool     // --no-headers
	WithNamespace bool     // -A: a NAMESPACE column first
	ShowLabels    bool     // --show-labels: a LABELS column last
	LabelColumns  []string // -L key: one column per label key
	// KindPrefix, when set ("deployment.apps"), prints names as
	// "deployment.apps/nginx", as kubectl does when several kinds are asked.
	KindPrefix string
	// EventType adds kubectl's EVENT column (--output-watch-events).
	EventType string
}

// Layout as kubectl's tab writer: cells padded by three spaces to the
// widest cell of the column, at least six wide; the last column unpadded.
const (
	padding  = 3
	minWidth = 6
)

// Printer prints Tables in kubectl's columns. It remembers the columns it
// printed and their widths, so rows that arrive one at a time (a watch)
// line up under one header. Not safe for concurrent use.
type Printer struct {
	opts     PrintOptions
	widths   []int
	lastCols []metav1.TableColumnDefinition
	headed   bool
}

// NewPrinter returns a Printer with opts.
func NewPrinter(opts PrintOptions) *Printer { return &Printer{opts: opts} }

// SetOptions changes the options for the tables printed next (a watch
// learns whether it needs the EVENT column per event).
func (p *Printer) SetOptions(opts PrintOptions) { p.opts = opts }

// PrintTable writes t. A table without column definitions reuses the last
// ones (watch events may omit them); a table with the same columns as the
// last one prints no second header. It prints nothing for a table without
// rows.
func (p *Printer) PrintTable(w io.Writer, t *metav1.Table) error {
	cols := t.ColumnDefinitions
	if len(cols) == 0 {
		cols = p.lastCols
	}
	if !equalColumns(cols, p.lastCols) {
		p.lastCols = cols
		p.headed = false
		p.widths = nil
	}
	if len(t.Rows) == 0 {
		return nil
	}
	header, rows := p.layout(cols, t.Rows)
	lines := rows
	if !p.opts.NoHeaders && !p.headed {
		lines = append([][]string{header}, rows...)
		p.headed = true
	}
	for _, l := range lines {
		for i, c := range l {
			if n := utf8.RuneCountInString(c) + padding; i >= len(p.widths) {
				p.widths = append(p.widths, max(n, minWidth))
			} else if n > p.widths[i] {
				p.widths[i] = n
			}
		}
	}
	var b strings.Builder
	for _, l := range lines {
		for i, c := range l {
			b.WriteString(c)
			if i < len(l)-1 {
				b.WriteString(strings.Repeat(" ", p.widths[i]-utf8.RuneCountInString(c)))
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func equalColumns(a, b []metav1.TableColumnDefinition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Priority != b[i].Priority {
			return false
		}
	}
	return true
}

// layout picks the visible columns and adds the namespace, label and event
// columns the options ask for.
func (p *Printer) layout(cols []metav1.TableColumnDefinition, rows []metav1.TableRow) ([]string, [][]string) {
	o := p.opts
	var header []string
	if o.EventType != "" {
		header = append(header, "EVENT")
	}
	if o.WithNamespace {
		header = append(header, "NAMESPACE")
	}
	nameCol := -1
	for i, c := range cols {
		if c.Priority != 0 && !o.Wide {
			continue
		}
		if c.Format == "name" && nameCol < 0 {
			nameCol = i
		}
		header = append(header, strings.ToUpper(c.Name))
	}
	for _, l := range o.LabelColumns {
		parts := strings.Split(l, "/")
		header = append(header, strings.ToUpper(parts[len(parts)-1]))
	}
	if o.ShowLabels {
		header = append(header, "LABELS")
	}
	out := make([][]string, 0, len(rows))
	for _, r := range rows {
		m := RowMeta(r)
		var line []string
		if o.EventType != "" {
			line = append(line, o.EventType)
		}
		if o.WithNamespace {
			ns := ""
			if m != nil {
				ns = m.GetNamespace()
			}
			line = append(line, ns)
		}
		for i, c := range cols {
			if c.Priority != 0 && !o.Wide {
				continue
			}
			var s string
			if i < len(r.Cells) && r.Cells[i] != nil {
				s = cellString(r.Cells[i])
			}
			if i == nameCol && o.KindPrefix != "" {
				s = o.KindPrefix + "/" + s
			}
			line = append(line, s)
		}
		var lbls map[string]string
		if m != nil {
			lbls = m.GetLabels()
		}
		for _, l := range o.LabelColumns {
			line = append(line, lbls[l])
		}
		if o.ShowLabels {
			line = append(line, labels.FormatLabels(lbls))
		}
		out = append(out, line)
	}
	return header, out
}

// cellString prints a cell as kubectl does; a cell never spans lines.
func cellString(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case float64:
		s = fmt.Sprintf("%v", x)
		if x == float64(int64(x)) {
			s = fmt.Sprintf("%d", int64(x))
		}
	default:
		s = fmt.Sprint(x)
	}
	if i := strings.IndexAny(s, "\n\r\f"); i >= 0 {
		s = s[:i] + "..."
	}
	return s
}

// RowMeta returns the metadata of a row's object, whether the row holds a
// decoded object or the JSON of one (an object or PartialObjectMetadata);
// nil when it has neither.
func RowMeta(r metav1.TableRow) metav1.Object {
	if r.Object.Object != nil {
		if m, err := meta.Accessor(r.Object.Object); err == nil {
			return m
		}
	}
	if len(r.Object.Raw) == 0 {
		return nil
	}
	var pm metav1.PartialObjectMetadata
	if err := json.Unmarshal(r.Object.Raw, &pm); err != nil {
		return nil
	}
	return &pm
}

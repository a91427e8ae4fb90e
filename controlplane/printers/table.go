package printers

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Column priorities: 0 columns always show, 1 columns only with -o wide.
const (
	standard = 0
	wide     = 1
)

// handler renders one kind: its column definitions and the cells of one
// object (every column, wide ones included, as the server always sends).
type handler struct {
	columns []metav1.TableColumnDefinition
	cells   func(obj runtime.Object, now time.Time) []any
}

// handlers maps a Go type name to its handler; see kinds.go.
var handlers = map[string]handler{}

func register(sample runtime.Object, columns []metav1.TableColumnDefinition, cells func(obj runtime.Object, now time.Time) []any) {
	handlers[fmt.Sprintf("%T", sample)] = handler{columns: columns, cells: cells}
}

var defaultHandler = handler{
	columns: []metav1.TableColumnDefinition{nameColumn, ageColumn},
	cells: func(obj runtime.Object, now time.Time) []any {
		m, err := meta.Accessor(obj)
		if err != nil {
			return []any{"<unknown>", "<unknown>"}
		}
		return []any{m.GetName(), Age(m.GetCreationTimestamp(), now)}
	},
}

var (
	nameColumn = metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name",
		Description: "Name must be unique within a namespace."}
	ageColumn = metav1.TableColumnDefinition{Name: "Age", Type: "string",
		Description: "CreationTimestamp is a timestamp representing the server time when this object was created."}
)

// TableFor renders obj (one object or a list of one kind) as a
// meta.k8s.io/v1 Table with every column, wide ones at priority 1. Each
// row's Object holds the item itself; the caller replaces it with what
// the request's includeObject asks for. now is the clock Age reads.
// Safe for concurrent use.
func TableFor(obj runtime.Object, now time.Time) (*metav1.Table, error) {
	items := []runtime.Object{obj}
	if meta.IsListType(obj) {
		var err error
		if items, err = meta.ExtractList(obj); err != nil {
			return nil, fmt.Errorf("extract list %T: %w", obj, err)
		}
	}
	sample := obj
	if len(items) > 0 {
		sample = items[0]
	} else if meta.IsListType(obj) {
		sample = nil
	}
	h := handlerFor(obj, sample)
	t := &metav1.Table{
		TypeMeta:          metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"},
		ColumnDefinitions: append([]metav1.TableColumnDefinition(nil), h.columns...),
		Rows:              make([]metav1.TableRow, 0, len(items)),
	}
	if lm, err := meta.ListAccessor(obj); err == nil && meta.IsListType(obj) {
		t.ResourceVersion = lm.GetResourceVersion()
		t.Continue = lm.GetContinue()
		t.RemainingItemCount = lm.GetRemainingItemCount()
	} else if m, err := meta.Accessor(obj); err == nil {
		t.ResourceVersion = m.GetResourceVersion()
	}
	for _, item := range items {
		t.Rows = append(t.Rows, metav1.TableRow{
			Cells:  h.cells(item, now),
			Object: runtime.RawExtension{Object: item},
		})
	}
	return t, nil
}

// ColumnsFor returns the column definitions of obj's kind (an object or a
// list), for a watch that has not seen an object yet.
func ColumnsFor(obj runtime.Object) []metav1.TableColumnDefinition {
	return append([]metav1.TableColumnDefinition(nil), handlerFor(obj, obj).columns...)
}

func handlerFor(obj, sample runtime.Object) handler {
	if sample != nil {
		if h, ok := handlers[fmt.Sprintf("%T", sample)]; ok {
			return h
		}
	}
	// An empty list: find the item type by the list's type name.
	name := strings.TrimSuffix(fmt.Sprintf("%T", obj), "List")
	if h, ok := handlers[name]; ok {
		return h
	}
	return defaultHandler
}

// Age is kubectl's AGE cell: the human duration since t, "<unknown>" for
// a zero time.
func Age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

func microAge(t metav1.MicroTime, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

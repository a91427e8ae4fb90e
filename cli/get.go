package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/jsonpath"
	"sigs.k8s.io/yaml"

	"weir.dev/weir/controlplane/printers"
)

// TableAccept asks for a meta.k8s.io Table, as kubectl get does.
const TableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"

// GetOptions are get's flags.
type GetOptions struct {
	Output            string // "", wide, yaml, json, name, jsonpath=…
	Selector          string // -l
	FieldSelector     string // --field-selector
	AllNamespaces     bool   // -A
	ShowLabels        bool   // --show-labels
	LabelColumns      []string
	NoHeaders         bool
	Watch             bool // -w
	WatchOnly         bool // --watch-only
	OutputWatchEvents bool
	IgnoreNotFound    bool
}

func (o GetOptions) humanReadable() bool { return o.Output == "" || o.Output == "wide" }

// Get prints objects as kubectl get does; with Watch it keeps printing
// changes until ctx ends.
func (c *Client) Get(ctx context.Context, s Streams, o GetOptions, args []string) error {
	if err := checkOutput(o.Output); err != nil {
		return err
	}
	targets, err := c.parseTargets(args)
	if err != nil {
		return err
	}
	if (o.Watch || o.WatchOnly) && (len(targets) != 1 || len(targets[0].names) > 1) {
		return fmt.Errorf("watch is only supported on individual resources and resource collections, but %d resources were found", countNames(targets))
	}
	var errs []error
	if o.humanReadable() {
		p := printers.NewPrinter(printers.PrintOptions{
			Wide: o.Output == "wide", NoHeaders: o.NoHeaders, WithNamespace: o.AllNamespaces,
			ShowLabels: o.ShowLabels, LabelColumns: o.LabelColumns,
		})
		printed := 0
		var rv string
		for _, t := range targets {
			if o.WatchOnly {
				break
			}
			tables, err := c.tables(ctx, t, o)
			if err != nil {
				errs = append(errs, err)
			}
			rows := 0
			for _, tb := range tables {
				rows += len(tb.Rows)
			}
			if rows == 0 {
				continue
			}
			if len(targets) > 1 {
				p = printers.NewPrinter(printers.PrintOptions{
					Wide: o.Output == "wide", NoHeaders: o.NoHeaders, WithNamespace: o.AllNamespaces,
					ShowLabels: o.ShowLabels, LabelColumns: o.LabelColumns, KindPrefix: KindString(t.mapping),
				})
				if printed > 0 {
					fmt.Fprintln(s.Out)
				}
			}
			for _, tb := range tables {
				if err := p.PrintTable(s.Out, tb); err != nil {
					return err
				}
				rv = tb.ResourceVersion
			}
			printed += rows
		}
		if printed == 0 && len(errs) == 0 && !o.Watch && !o.WatchOnly {
			fmt.Fprintln(s.ErrOut, noResources(c, targets, o))
		}
		if len(errs) == 0 && (o.Watch || o.WatchOnly) {
			if printed == 0 && !o.WatchOnly {
				fmt.Fprintln(s.ErrOut, noResources(c, targets, o))
			}
			return c.watch(ctx, s, o, targets[0], rv, p)
		}
		return errors.Join(errs...)
	}
	var items []*unstructured.Unstructured
	single := len(targets) == 1 && len(targets[0].names) == 1
	var rv string
	for _, t := range targets {
		objs, listRV, err := c.objects(ctx, t, o)
		if err != nil {
			errs = append(errs, err)
		}
		items = append(items, objs...)
		rv = listRV
	}
	if !o.WatchOnly && (len(items) > 0 || len(errs) == 0) {
		if err := printObjects(s.Out, o.Output, items, single && len(errs) == 0); err != nil {
			return err
		}
	}
	if len(errs) == 0 && (o.Watch || o.WatchOnly) {
		return c.watch(ctx, s, o, targets[0], rv, nil)
	}
	return errors.Join(errs...)
}

func countNames(ts []target) int {
	n := 0
	for _, t := range ts {
		n += max(len(t.names), 1)
	}
	return n
}

func noResources(c *Client, ts []target, o GetOptions) string {
	if o.AllNamespaces || (len(ts) > 0 && !namespaced(ts[0].mapping)) {
		return "No resources found"
	}
	return fmt.Sprintf("No resources found in %s namespace.", c.Namespace)
}

func checkOutput(out string) error {
	switch {
	case out == "", out == "wide", out == "yaml", out == "json", out == "name",
		strings.HasPrefix(out, "jsonpath="), strings.HasPrefix(out, "jsonpath-as-json="):
		return nil
	}
	return fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: json,jsonpath,jsonpath-as-json,name,wide,yaml", out)
}

func listParams(o GetOptions) map[string]string {
	return map[string]string{"labelSelector": o.Selector, "fieldSelector": o.FieldSelector}
}

// tables fetches t as server-side Tables: one per named object, or one
// list.
func (c *Client) tables(ctx context.Context, t target, o GetOptions) ([]*metav1.Table, error) {
	ns := c.nsFor(t.mapping, o.AllNamespaces)
	if len(t.names) == 0 {
		body, err := c.rawGet(ctx, resourcePath(t.mapping, ns, "", ""), listParams(o), TableAccept)
		if err != nil {
			return nil, err
		}
		tb, err := decodeTable(body)
		if err != nil {
			return nil, err
		}
		return []*metav1.Table{tb}, nil
	}
	var out []*metav1.Table
	var errs []error
	for _, n := range t.names {
		body, err := c.rawGet(ctx, resourcePath(t.mapping, c.nsFor(t.mapping, false), n, ""), nil, TableAccept)
		if apierrors.IsNotFound(err) && o.IgnoreNotFound {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tb, err := decodeTable(body)
		if err != nil {
			return nil, err
		}
		out = append(out, tb)
	}
	return out, errors.Join(errs...)
}

// decodeTable reads a Table, or renders one here from a plain object or
// list when the server did not send a Table.
func decodeTable(body []byte) (*metav1.Table, error) {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(body, &tm); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	if tm.Kind == "Table" {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var t metav1.Table
		if err := dec.Decode(&t); err != nil {
			return nil, fmt.Errorf("decode table: %w", err)
		}
		return &t, nil
	}
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	return printers.TableFor(obj, time.Now())
}

// objects fetches t's objects in full.
func (c *Client) objects(ctx context.Context, t target, o GetOptions) ([]*unstructured.Unstructured, string, error) {
	ns := c.nsFor(t.mapping, o.AllNamespaces)
	ri := c.Dynamic.Resource(t.mapping.Resource)
	var rif = ri.Namespace(ns)
	if len(t.names) == 0 {
		list, err := rif.List(ctx, metav1.ListOptions{LabelSelector: o.Selector, FieldSelector: o.FieldSelector})
		if err != nil {
			return nil, "", err
		}
		out := make([]*unstructured.Unstructured, len(list.Items))
		for i := range list.Items {
			out[i] = &list.Items[i]
		}
		return out, list.GetResourceVersion(), nil
	}
	var out []*unstructured.Unstructured
	var errs []error
	rv := ""
	for _, n := range t.names {
		u, err := ri.Namespace(c.nsFor(t.mapping, false)).Get(ctx, n, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && o.IgnoreNotFound {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rv = u.GetResourceVersion()
		out = append(out, u)
	}
	return out, rv, errors.Join(errs...)
}

// printObjects prints objects as yaml, json, name or jsonpath; single
// prints the object itself rather than a List.
func printObjects(w io.Writer, output string, items []*unstructured.Unstructured, single bool) error {
	if output == "name" {
		for _, u := range items {
			fmt.Fprintln(w, nameOf(u))
		}
		return nil
	}
	var doc any
	if single && len(items) == 1 {
		doc = items[0].Object
	} else {
		list := make([]any, len(items))
		for i, u := range items {
			list[i] = u.Object
		}
		doc = map[string]any{"apiVersion": "v1", "kind": "List", "items": list, "metadata": map[string]any{"resourceVersion": ""}}
	}
	return printDoc(w, output, doc)
}

func printDoc(w io.Writer, output string, doc any) error {
	switch {
	case output == "yaml":
		b, err := yaml.Marshal(doc)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case output == "json":
		b, err := json.MarshalIndent(doc, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case strings.HasPrefix(output, "jsonpath=") || strings.HasPrefix(output, "jsonpath-as-json="):
		_, tmpl, _ := strings.Cut(output, "=")
		jp := jsonpath.New("out").AllowMissingKeys(true)
		if strings.HasPrefix(output, "jsonpath-as-json=") {
			jp.EnableJSONOutput(true)
		}
		if err := jp.Parse(relaxedJSONPath(tmpl)); err != nil {
			return fmt.Errorf("error parsing jsonpath %s, %w", tmpl, err)
		}
		return jp.Execute(w, doc)
	}
	return checkOutput(output)
}

// relaxedJSONPath accepts "{.a}" and ".a" alike, as kubectl does.
func relaxedJSONPath(p string) string {
	if strings.HasPrefix(p, "{") || !strings.HasPrefix(p, ".") {
		return p
	}
	return "{" + p + "}"
}

// nameOf is "kind.group/name", kubectl's -o name.
func nameOf(u *unstructured.Unstructured) string {
	gvk := u.GroupVersionKind()
	k := strings.ToLower(gvk.Kind)
	if gvk.Group != "" {
		k += "." + gvk.Group
	}
	return k + "/" + u.GetName()
}

type watchEvent struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

// watch follows t from rv, printing each change as a row (or an object in
// the chosen output), until ctx ends or the server closes the watch.
func (c *Client) watch(ctx context.Context, s Streams, o GetOptions, t target, rv string, p *printers.Printer) error {
	ns := c.nsFor(t.mapping, o.AllNamespaces)
	params := listParams(o)
	params["watch"] = "true"
	params["resourceVersion"] = rv
	if rv == "" && !o.WatchOnly {
		params["resourceVersion"] = "0"
	}
	if len(t.names) == 1 {
		params["fieldSelector"] = fields.AndSelectors(fields.OneTermEqualSelector("metadata.name", t.names[0]),
			mustFields(o.FieldSelector)).String()
		ns = c.nsFor(t.mapping, false)
	}
	accept := "application/json"
	if p != nil {
		accept = TableAccept
	}
	for {
		body, err := c.rawStream(ctx, resourcePath(t.mapping, ns, "", ""), params, accept)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		last, err := c.followWatch(ctx, s, o, body, p)
		body.Close()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		// The server ended the watch (its timeout): resume where it was.
		if last != "" {
			params["resourceVersion"] = last
		}
	}
}

func mustFields(s string) fields.Selector {
	sel, err := fields.ParseSelector(s)
	if err != nil {
		return fields.Everything()
	}
	return sel
}

func (c *Client) followWatch(ctx context.Context, s Streams, o GetOptions, body io.Reader, p *printers.Printer) (string, error) {
	dec := json.NewDecoder(body)
	dec.UseNumber()
	last := ""
	for {
		var ev watchEvent
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return last, nil
			}
			return last, fmt.Errorf("read watch: %w", err)
		}
		switch ev.Type {
		case "ERROR":
			var st metav1.Status
			if err := json.Unmarshal(ev.Object, &st); err != nil {
				return last, fmt.Errorf("watch error: %s", ev.Object)
			}
			return last, &apierrors.StatusError{ErrStatus: st}
		case "BOOKMARK":
			continue
		}
		if p != nil {
			var tb metav1.Table
			d := json.NewDecoder(bytes.NewReader(ev.Object))
			d.UseNumber()
			if err := d.Decode(&tb); err != nil {
				return last, fmt.Errorf("decode watch table: %w", err)
			}
			if len(tb.Rows) > 0 {
				if m := printers.RowMeta(tb.Rows[0]); m != nil {
					last = m.GetResourceVersion()
				}
			}
			if o.OutputWatchEvents {
				opts := printers.PrintOptions{Wide: o.Output == "wide", NoHeaders: o.NoHeaders, WithNamespace: o.AllNamespaces,
					ShowLabels: o.ShowLabels, LabelColumns: o.LabelColumns, EventType: ev.Type}
				p.SetOptions(opts)
			}
			if err := p.PrintTable(s.Out, &tb); err != nil {
				return last, err
			}
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(ev.Object); err != nil {
			return last, fmt.Errorf("decode watch object: %w", err)
		}
		last = u.GetResourceVersion()
		if o.Output == "yaml" {
			fmt.Fprintln(s.Out, "---")
		}
		if err := printObjects(s.Out, o.Output, []*unstructured.Unstructured{u}, true); err != nil {
			return last, err
		}
	}
}

// toTyped converts an unstructured object into its Go type when the
// scheme knows it.
func toTyped(u *unstructured.Unstructured) (runtime.Object, error) {
	obj, err := scheme.Scheme.New(u.GroupVersionKind())
	if err != nil {
		return nil, err
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return nil, fmt.Errorf("convert %s: %w", u.GetKind(), err)
	}
	obj.GetObjectKind().SetGroupVersionKind(u.GroupVersionKind())
	return obj, nil
}

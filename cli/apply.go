package cli

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"weir.dev/weir/cli/manifest"
)

// DryRun is --dry-run: none, client or server.
type DryRun string

const (
	DryRunNone   DryRun = "none"
	DryRunClient DryRun = "client"
	DryRunServer DryRun = "server"
)

// ParseDryRun reads --dry-run's value.
func ParseDryRun(s string) (DryRun, error) {
	switch s {
	case "", "none", "false":
		return DryRunNone, nil
	case "client", "true":
		return DryRunClient, nil
	case "server":
		return DryRunServer, nil
	}
	return "", fmt.Errorf("invalid dry-run value (%s). Must be \"none\", \"server\", or \"client\"", s)
}

func (d DryRun) suffix() string {
	switch d {
	case DryRunClient:
		return " (dry run)"
	case DryRunServer:
		return " (server dry run)"
	}
	return ""
}

func (d DryRun) opts() []string {
	if d == DryRunServer {
		return []string{metav1.DryRunAll}
	}
	return nil
}

// FileOptions are -f, -R and --dry-run, shared by apply, create, replace
// and delete.
type FileOptions struct {
	Filenames []string
	Recursive bool
	DryRun    DryRun
	Output    string // "" or name
}

// resolved is a document with its mapping and namespace.
type resolved struct {
	doc     manifest.Doc
	mapping *meta.RESTMapping
	ns      string
}

// resolve reads the manifests and maps every document before anything is
// sent: a bad document stops the whole verb.
func (c *Client) resolve(s Streams, o FileOptions) ([]resolved, error) {
	docs, err := manifest.Read(o.Filenames, s.In, o.Recursive)
	if err != nil {
		return nil, err
	}
	out := make([]resolved, 0, len(docs))
	var errs []error
	for _, d := range docs {
		m, err := c.MappingForKind(d.GVK())
		if err != nil {
			errs = append(errs, fmt.Errorf("resource mapping not found for name: %q namespace: %q from %s: %w",
				d.Object.GetName(), d.Object.GetNamespace(), d.Where(), err))
			continue
		}
		r := resolved{doc: d, mapping: m}
		if namespaced(m) {
			r.ns = d.Object.GetNamespace()
			switch {
			case r.ns == "":
				r.ns = c.Namespace
			case c.ExplicitNamespace && r.ns != c.Namespace:
				errs = append(errs, fmt.Errorf("the namespace from the provided object %q does not match the namespace %q. You must pass '--namespace=%s' to perform this operation", r.ns, c.Namespace, r.ns))
				continue
			}
			d.Object.SetNamespace(r.ns)
		} else {
			d.Object.SetNamespace("")
		}
		out = append(out, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func (c *Client) resourceFor(r resolved) dynamic.ResourceInterface {
	ri := c.Dynamic.Resource(r.mapping.Resource)
	if namespaced(r.mapping) {
		return ri.Namespace(r.ns)
	}
	return ri
}

func (c *Client) report(s Streams, o FileOptions, r resolved, name, verb string) {
	if o.Output == "name" {
		fmt.Fprintf(s.Out, "%s/%s\n", KindString(r.mapping), name)
		return
	}
	fmt.Fprintf(s.Out, "%s/%s %s%s\n", KindString(r.mapping), name, verb, o.DryRun.suffix())
}

// sourceError adds where a document came from to a server's error; it
// wraps the API error so FormatError still words it as kubectl does.
func sourceError(verb string, d manifest.Doc, err error) error {
	return fmt.Errorf("error when %s %s: %w", verb, d.Where(), err)
}

// Apply creates or updates every object of the manifests as kubectl's
// client-side apply does: a three-way merge of the last applied
// configuration, the file and the live object. Every document is checked
// before the first is sent; a document the server refuses is reported
// with where it came from, the others still apply, and the error is
// returned.
func (c *Client) Apply(ctx context.Context, s Streams, o FileOptions) error {
	rs, err := c.resolve(s, o)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range rs {
		if err := c.applyOne(ctx, s, o, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Client) applyOne(ctx context.Context, s Streams, o FileOptions, r resolved) error {
	ri := c.resourceFor(r)
	u := r.doc.Object
	modified, err := manifest.Modified(u)
	if err != nil {
		return err
	}
	current, err := ri.Get(ctx, u.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if o.DryRun == DryRunClient {
			c.report(s, o, r, u.GetName(), "created")
			return nil
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(modified); err != nil {
			return err
		}
		created, err := ri.Create(ctx, obj, metav1.CreateOptions{DryRun: o.DryRun.opts(),
			FieldManager: "kubectl-client-side-apply", FieldValidation: "Strict"})
		if err != nil {
			return sourceError("creating", r.doc, err)
		}
		c.report(s, o, r, created.GetName(), "created")
		return nil
	}
	if err != nil {
		return sourceError("retrieving current configuration of", r.doc, err)
	}
	cur, err := current.MarshalJSON()
	if err != nil {
		return err
	}
	patch, pt, err := manifest.ThreeWayPatch(r.doc.GVK(), manifest.LastApplied(current), modified, cur)
	if err != nil {
		return fmt.Errorf("%s: %w", r.doc.Where(), err)
	}
	if string(patch) == "{}" {
		c.report(s, o, r, u.GetName(), "unchanged")
		return nil
	}
	if o.DryRun != DryRunClient {
		if _, err := ri.Patch(ctx, u.GetName(), pt, patch, metav1.PatchOptions{DryRun: o.DryRun.opts(),
			FieldManager: "kubectl-client-side-apply", FieldValidation: "Strict"}); err != nil {
			return sourceError("patching", r.doc, err)
		}
	}
	c.report(s, o, r, u.GetName(), "configured")
	return nil
}

// Create creates every object of the manifests.
func (c *Client) Create(ctx context.Context, s Streams, o FileOptions) error {
	rs, err := c.resolve(s, o)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range rs {
		if o.DryRun == DryRunClient {
			c.report(s, o, r, r.doc.Object.GetName(), "created")
			continue
		}
		out, err := c.resourceFor(r).Create(ctx, r.doc.Object, metav1.CreateOptions{DryRun: o.DryRun.opts(), FieldValidation: "Strict"})
		if err != nil {
			errs = append(errs, sourceError("creating", r.doc, err))
			continue
		}
		c.report(s, o, r, out.GetName(), "created")
	}
	return errors.Join(errs...)
}

// Replace replaces every object of the manifests with the file's version.
func (c *Client) Replace(ctx context.Context, s Streams, o FileOptions) error {
	rs, err := c.resolve(s, o)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range rs {
		if o.DryRun == DryRunClient {
			c.report(s, o, r, r.doc.Object.GetName(), "replaced")
			continue
		}
		ri := c.resourceFor(r)
		obj := r.doc.Object.DeepCopy()
		if obj.GetResourceVersion() == "" {
			// kubectl replace keeps the live resourceVersion so the write
			// is a compare-and-swap on what it read.
			cur, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
			if err != nil {
				errs = append(errs, sourceError("replacing", r.doc, err))
				continue
			}
			obj.SetResourceVersion(cur.GetResourceVersion())
		}
		out, err := ri.Update(ctx, obj, metav1.UpdateOptions{DryRun: o.DryRun.opts(), FieldValidation: "Strict"})
		if err != nil {
			errs = append(errs, sourceError("replacing", r.doc, err))
			continue
		}
		c.report(s, o, r, out.GetName(), "replaced")
	}
	return errors.Join(errs...)
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

// object names one live object.
type object struct {
	mapping *meta.RESTMapping
	ns      string
	name    string
	u       *unstructured.Unstructured // when already read
}

func (o object) String() string { return KindString(o.mapping) + "/" + o.name }

// selectObjects finds the objects named by args (with names), or every
// object of the kinds matching selector (or all, with all).
func (c *Client) selectObjects(ctx context.Context, args []string, selector string, all, allNamespaces bool) ([]object, error) {
	targets, err := c.parseTargets(args)
	if err != nil {
		return nil, err
	}
	var out []object
	for _, t := range targets {
		if len(t.names) > 0 {
			for _, n := range t.names {
				out = append(out, object{mapping: t.mapping, ns: c.nsFor(t.mapping, false), name: n})
			}
			continue
		}
		if selector == "" && !all {
			return nil, errors.New("resource(s) were provided, but no name was specified")
		}
		objs, _, err := c.objects(ctx, t, GetOptions{Selector: selector, AllNamespaces: allNamespaces})
		if err != nil {
			return nil, err
		}
		for _, u := range objs {
			out = append(out, object{mapping: t.mapping, ns: u.GetNamespace(), name: u.GetName(), u: u})
		}
	}
	return out, nil
}

func (c *Client) resource(o object) interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions, sub ...string) (*unstructured.Unstructured, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, sub ...string) (*unstructured.Unstructured, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions, sub ...string) error
} {
	ri := c.Dynamic.Resource(o.mapping.Resource)
	if namespaced(o.mapping) {
		return ri.Namespace(o.ns)
	}
	return ri
}

// DeleteOptions are delete's flags.
type DeleteOptions struct {
	FileOptions
	Selector       string
	All            bool
	AllNamespaces  bool
	GracePeriod    int // -1: the object's own
	Now            bool
	Force          bool
	Cascade        string
	Wait           bool
	Timeout        time.Duration
	IgnoreNotFound bool
}

// Delete deletes objects named by args, files or a selector, and waits
// for them to be gone unless told not to.
func (c *Client) Delete(ctx context.Context, s Streams, o DeleteOptions, args []string) error {
	var objs []object
	switch {
	case len(o.Filenames) > 0:
		if len(args) > 0 {
			return errors.New("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form")
		}
		rs, err := c.resolve(s, o.FileOptions)
		if err != nil {
			return err
		}
		for _, r := range rs {
			objs = append(objs, object{mapping: r.mapping, ns: r.ns, name: r.doc.Object.GetName()})
		}
	case len(args) == 0:
		return errors.New("You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'")
	default:
		var err error
		if objs, err = c.selectObjects(ctx, args, o.Selector, o.All, o.AllNamespaces); err != nil {
			return err
		}
	}
	policy, err := cascade(o.Cascade)
	if err != nil {
		return err
	}
	opts := metav1.DeleteOptions{PropagationPolicy: &policy, DryRun: o.DryRun.opts()}
	grace := o.GracePeriod
	if o.Now {
		grace = 1
	}
	if o.Force && grace < 0 {
		grace = 0
	}
	if grace >= 0 {
		g := int64(grace)
		opts.GracePeriodSeconds = &g
	}
	var errs []error
	var deleted []object
	for _, ob := range objs {
		if o.DryRun != DryRunClient {
			cur, err := c.resource(ob).Get(ctx, ob.name, metav1.GetOptions{})
			if err == nil {
				ob.u = cur
				err = c.resource(ob).Delete(ctx, ob.name, opts)
			}
			if apierrors.IsNotFound(err) && o.IgnoreNotFound {
				continue
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
		}
		verb := "deleted"
		if grace == 0 {
			verb = "force deleted"
		}
		if namespaced(ob.mapping) {
			verb += " from " + ob.ns + " namespace"
		}
		if o.Output == "name" {
			fmt.Fprintln(s.Out, ob.String())
		} else {
			fmt.Fprintf(s.Out, "%s %q %s%s\n", KindString(ob.mapping), ob.name, verb, o.DryRun.suffix())
		}
		deleted = append(deleted, ob)
	}
	if o.Wait && o.DryRun == DryRunNone && len(deleted) > 0 {
		if err := c.waitDeleted(ctx, deleted, o.Timeout); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func cascade(s string) (metav1.DeletionPropagation, error) {
	switch s {
	case "", "background", "true":
		return metav1.DeletePropagationBackground, nil
	case "foreground":
		return metav1.DeletePropagationForeground, nil
	case "orphan", "false":
		return metav1.DeletePropagationOrphan, nil
	}
	return "", fmt.Errorf("invalid cascade value (%v). Must be \"background\", \"foreground\", or \"orphan\"", s)
}

// waitDeleted polls until each object is gone (or was replaced by a new
// one of the same name).
func (c *Client) waitDeleted(ctx context.Context, objs []object, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = 24 * time.Hour
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, ob := range objs {
		for {
			cur, err := c.resource(ob).Get(ctx, ob.name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) || (err == nil && ob.u != nil && cur.GetUID() != ob.u.GetUID()) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("timed out waiting for the condition on %s", ob.mapping.Resource.GroupResource().String()+"/"+ob.name)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// MetaOptions are label's and annotate's flags.
type MetaOptions struct {
	Overwrite     bool
	Selector      string
	All           bool
	AllNamespaces bool
	DryRun        DryRun
}

// Label sets and removes labels (annotate: annotations) on objects:
// "key=value" sets, "key-" removes, as kubectl label and annotate do.
func (c *Client) Label(ctx context.Context, s Streams, o MetaOptions, args []string, annotate bool) error {
	i := 0
	for i < len(args) && !strings.Contains(args[i], "=") && !strings.HasSuffix(args[i], "-") {
		i++
	}
	what := "label"
	if annotate {
		what = "annotation"
	}
	if i == len(args) {
		return fmt.Errorf("at least one %s update is required", what)
	}
	resArgs, ops := args[:i], args[i:]
	set := map[string]string{}
	var remove []string
	for _, op := range ops {
		if k, v, ok := strings.Cut(op, "="); ok {
			if !annotate {
				if errs := validation.IsQualifiedName(k); len(errs) > 0 {
					return fmt.Errorf("invalid label spec: %s", op)
				}
				if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
					return fmt.Errorf("invalid label spec: %s, %s", op, strings.Join(errs, "; "))
				}
			}
			set[k] = v
			continue
		}
		remove = append(remove, strings.TrimSuffix(op, "-"))
	}
	objs, err := c.selectObjects(ctx, resArgs, o.Selector, o.All, o.AllNamespaces)
	if err != nil {
		return err
	}
	var errs []error
	for _, ob := range objs {
		cur := ob.u
		if cur == nil {
			if cur, err = c.resource(ob).Get(ctx, ob.name, metav1.GetOptions{}); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		old := cur.GetLabels()
		if annotate {
			old = cur.GetAnnotations()
		}
		if !o.Overwrite {
			var conflicts []string
			keys := make([]string, 0, len(set))
			for k := range set {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if v, ok := old[k]; ok && v != set[k] {
					conflicts = append(conflicts, fmt.Sprintf("'%s' already has a value (%s)", k, v))
				}
			}
			if len(conflicts) > 0 {
				if annotate {
					errs = append(errs, fmt.Errorf("--overwrite is false but found the following declared annotation(s): %s", strings.Join(conflicts, "; ")))
					continue
				}
				for _, cf := range conflicts {
					errs = append(errs, fmt.Errorf("%s, and --overwrite is false", cf))
				}
				continue
			}
		}
		change := map[string]any{}
		added, removed := false, false
		for k, v := range set {
			if ov, ok := old[k]; !ok || ov != v {
				change[k] = v
				added = true
			}
		}
		for _, k := range remove {
			if _, ok := old[k]; ok {
				change[k] = nil
				removed = true
			}
		}
		msg := "not labeled"
		switch {
		case added && removed:
			msg = "modified"
		case added:
			msg = "labeled"
		case removed:
			msg = "unlabeled"
		}
		if annotate {
			msg = "annotated"
		}
		if len(change) > 0 && o.DryRun != DryRunClient {
			field := "labels"
			if annotate {
				field = "annotations"
			}
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{field: change}})
			if _, err := c.resource(ob).Patch(ctx, ob.name, types.MergePatchType, patch, metav1.PatchOptions{DryRun: o.DryRun.opts()}); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		fmt.Fprintf(s.Out, "%s %s%s\n", ob, msg, o.DryRun.suffix())
	}
	return errors.Join(errs...)
}

// ScaleOptions are scale's flags.
type ScaleOptions struct {
	Replicas        int
	CurrentReplicas int // -1: no precondition
	Selector        string
	All             bool
	DryRun          DryRun
}

// Scale sets the replicas of objects through their scale subresource.
func (c *Client) Scale(ctx context.Context, s Streams, o ScaleOptions, args []string) error {
	if o.Replicas < 0 {
		return errors.New("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
	}
	objs, err := c.selectObjects(ctx, args, o.Selector, o.All, false)
	if err != nil {
		return err
	}
	var errs []error
	for _, ob := range objs {
		if o.CurrentReplicas >= 0 {
			sc, err := c.resource(ob).Get(ctx, ob.name, metav1.GetOptions{}, "scale")
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if cur, _, _ := unstructured.NestedInt64(sc.Object, "spec", "replicas"); cur != int64(o.CurrentReplicas) {
				errs = append(errs, fmt.Errorf("Expected replicas to be %d, was %d", o.CurrentReplicas, cur))
				continue
			}
		}
		if o.DryRun != DryRunClient {
			patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, o.Replicas)
			if _, err := c.resource(ob).Patch(ctx, ob.name, types.MergePatchType, patch, metav1.PatchOptions{DryRun: o.DryRun.opts()}, "scale"); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		fmt.Fprintf(s.Out, "%s scaled%s\n", ob, o.DryRun.suffix())
	}
	return errors.Join(errs...)
}

// SetImage sets container images: args are TYPE/NAME (or TYPE NAME)
// followed by container=image pairs ("*" for every container).
func (c *Client) SetImage(ctx context.Context, s Streams, dry DryRun, args []string) error {
	i := 0
	for i < len(args) && !strings.Contains(args[i], "=") {
		i++
	}
	if i == 0 || i == len(args) {
		return errors.New("one or more resources and at least one container=image pair are required")
	}
	images := map[string]string{}
	for _, p := range args[i:] {
		k, v, _ := strings.Cut(p, "=")
		images[k] = v
	}
	objs, err := c.selectObjects(ctx, args[:i], "", false, false)
	if err != nil {
		return err
	}
	var errs []error
	for _, ob := range objs {
		cur, err := c.resource(ob).Get(ctx, ob.name, metav1.GetOptions{})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		path := []string{"spec", "template", "spec"}
		switch cur.GetKind() {
		case "Pod":
			path = []string{"spec"}
		case "CronJob":
			path = []string{"spec", "jobTemplate", "spec", "template", "spec"}
		}
		var patchContainers []any
		found := map[string]bool{}
		for _, field := range []string{"initContainers", "containers"} {
			cs, _, _ := unstructured.NestedSlice(cur.Object, append(append([]string{}, path...), field)...)
			var changed []any
			for _, cv := range cs {
				cm, _ := cv.(map[string]any)
				name, _ := cm["name"].(string)
				img, ok := images[name]
				if !ok {
					img, ok = images["*"]
				}
				if !ok {
					continue
				}
				found[name] = true
				changed = append(changed, map[string]any{"name": name, "image": img})
			}
			if len(changed) > 0 {
				patchContainers = append(patchContainers, field, changed)
			}
		}
		for name := range images {
			if name != "*" && !found[name] {
				errs = append(errs, fmt.Errorf("unable to find container named %q", name))
			}
		}
		if len(patchContainers) == 0 {
			continue
		}
		spec := map[string]any{}
		for j := 0; j < len(patchContainers); j += 2 {
			spec[patchContainers[j].(string)] = patchContainers[j+1]
		}
		var patch any = spec
		for k := len(path) - 1; k >= 0; k-- {
			patch = map[string]any{path[k]: patch}
		}
		body, _ := json.Marshal(patch)
		if dry != DryRunClient {
			if _, err := c.resource(ob).Patch(ctx, ob.name, types.StrategicMergePatchType, body, metav1.PatchOptions{DryRun: dry.opts()}); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		fmt.Fprintf(s.Out, "%s image updated%s\n", ob, dry.suffix())
	}
	return errors.Join(errs...)
}

// LogsOptions are logs' flags.
type LogsOptions struct {
	Container  string
	Follow     bool
	Previous   bool
	TailLines  int64 // -1: all
	Timestamps bool
	// Since shows only lines newer than that (kubectl's --since, sent
	// as sinceSeconds rounded to whole seconds); SinceTime only lines
	// after that RFC3339 time (--since-time). At most one is set.
	Since     time.Duration
	SinceTime string
}

// Logs streams a pod's log through the pods/log subresource.
func (c *Client) Logs(ctx context.Context, s Streams, o LogsOptions, args []string) error {
	since, err := o.sinceParams()
	if err != nil {
		return err
	}
	name, err := podArg(args)
	if err != nil {
		return err
	}
	container := o.Container
	if container == "" {
		pod, err := c.Typed.CoreV1().Pods(c.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if container, err = DefaultContainer(pod); err != nil {
			return err
		}
	}
	params := map[string]string{"container": container}
	if o.Follow {
		params["follow"] = "true"
	}
	if o.Previous {
		params["previous"] = "true"
	}
	if o.Timestamps {
		params["timestamps"] = "true"
	}
	if o.TailLines >= 0 {
		params["tailLines"] = fmt.Sprint(o.TailLines)
	}
	maps.Copy(params, since)
	body, err := c.rawStream(ctx, "/api/v1/namespaces/"+c.Namespace+"/pods/"+name+"/log", params, "")
	if err != nil {
		return err
	}
	defer body.Close()
	_, err = io.Copy(s.Out, body)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// sinceParams validates --since and --since-time as kubectl does and
// returns their query parameters.
func (o LogsOptions) sinceParams() (map[string]string, error) {
	if o.SinceTime != "" && o.Since != 0 {
		return nil, errors.New("at most one of `sinceTime` or `sinceSeconds` may be specified")
	}
	if o.Since < 0 {
		return nil, errors.New("--since must be greater than 0")
	}
	p := map[string]string{}
	if o.SinceTime != "" {
		t, err := time.Parse(time.RFC3339Nano, o.SinceTime)
		if err != nil {
			return nil, fmt.Errorf("--since-time: %q is not an RFC3339 time", o.SinceTime)
		}
		p["sinceTime"] = t.UTC().Format(time.RFC3339)
	}
	if o.Since > 0 {
		// Whole seconds, at least one: the API refuses sinceSeconds=0.
		p["sinceSeconds"] = strconv.FormatInt(max(1, int64(o.Since.Round(time.Second)/time.Second)), 10)
	}
	return p, nil
}

func podArg(args []string) (string, error) {
	switch len(args) {
	case 1:
		typ, name, ok := strings.Cut(args[0], "/")
		if !ok {
			return args[0], nil
		}
		if typ != "pod" && typ != "pods" && typ != "po" {
			return "", fmt.Errorf("only pods are supported here, not %q", typ)
		}
		return name, nil
	case 0:
		return "", errors.New("expected POD or TYPE/NAME is a required argument")
	}
	return "", fmt.Errorf("expected one POD, got %d arguments", len(args))
}

package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"

	"weir.dev/weir/controlplane/defaults"
	"weir.dev/weir/controlplane/resources"
	"weir.dev/weir/controlplane/storage"
	"weir.dev/weir/controlplane/validation"
)

// maxRetries bounds the read-modify-write loops (patch, graceful delete,
// binding) that retry on a conflicting concurrent write.
const maxRetries = 16

func (s *Server) handle(w http.ResponseWriter, r *http.Request, ri requestInfo) {
	ctx := r.Context()
	if ri.Res.Namespaced && ri.Namespace == "" && ri.Verb != "list" && ri.Verb != "watch" {
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf("%s is namespaced: the path needs /namespaces/{namespace}/", ri.Res.Plural)))
		return
	}
	if ri.Subresource != "" && !ri.Res.HasSubresource(ri.Subresource) {
		writeError(w, apierrors.NewNotFound(ri.Res.GroupResource(), ri.Name+"/"+ri.Subresource))
		return
	}
	switch ri.Subresource {
	case "scale":
		s.handleScale(w, r, ri)
		return
	case "binding":
		s.handleBinding(w, r, ri)
		return
	case "eviction":
		s.handleEviction(w, r, ri)
		return
	case "log", "exec":
		s.handleNodeProxy(w, r, ri)
		return
	}
	var (
		obj  runtime.Object
		code = http.StatusOK
		err  error
		warn []string
	)
	switch ri.Verb {
	case "get":
		obj, err = s.get(ctx, ri)
	case "list":
		obj, err = s.list(ctx, ri, r.URL.Query())
	case "watch":
		s.serveWatch(w, r, ri)
		return
	case "create":
		obj, warn, err = s.createFromRequest(r, ri)
		code = http.StatusCreated
	case "update":
		obj, warn, err = s.updateFromRequest(r, ri)
	case "patch":
		obj, err = s.patchFromRequest(r, ri)
	case "delete":
		obj, code, err = s.deleteFromRequest(r, ri)
	case "deletecollection":
		obj, err = s.deleteCollection(r, ri)
	}
	for _, m := range warn {
		w.Header().Add("Warning", `299 - "`+strings.ReplaceAll(m, `"`, `'`)+`"`)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if rep, ok := wantedRepresentation(r, ri.Verb); ok {
		if obj, err = represent(ri.Res, obj, rep, time.Now()); err != nil {
			writeError(w, err)
			return
		}
	}
	writeObject(w, r, code, obj)
}

func (s *Server) get(ctx context.Context, ri requestInfo) (runtime.Object, error) {
	kv, err := s.store.Get(ctx, ri.Res.Key(ri.Namespace, ri.Name))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, apierrors.NewNotFound(ri.Res.GroupResource(), ri.Name)
	}
	if err != nil {
		return nil, err
	}
	return decodeStored(ri.Res, kv.Value, kv.Rev)
}

// selectors parses labelSelector and fieldSelector for a resource.
func selectors(res *resources.Resource, q map[string][]string) (labels.Selector, fields.Selector, error) {
	ls, fs := labels.Everything(), fields.Everything()
	if v := first(q["labelSelector"]); v != "" {
		sel, err := labels.Parse(v)
		if err != nil {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("invalid labelSelector %q: %v", v, err))
		}
		ls = sel
	}
	if v := first(q["fieldSelector"]); v != "" {
		sel, err := fields.ParseSelector(v)
		if err != nil {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("invalid fieldSelector %q: %v", v, err))
		}
		known := fieldLabels(res.New())
		for _, req := range sel.Requirements() {
			if !known[req.Field] {
				return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", req.Field))
			}
		}
		fs = sel
	}
	return ls, fs, nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func matches(obj runtime.Object, ls labels.Selector, fs fields.Selector) bool {
	if !ls.Empty() {
		m, err := meta.Accessor(obj)
		if err != nil || !ls.Matches(labels.Set(m.GetLabels())) {
			return false
		}
	}
	return fs.Empty() || fs.Matches(fieldSet(obj))
}

// listObjects reads objects of ri's resource (one namespace or all) that
// pass the selectors, and the store revision of the read.
func (s *Server) listObjects(ctx context.Context, res *resources.Resource, ns string, ls labels.Selector, fs fields.Selector) ([]runtime.Object, int64, error) {
	prefix := res.NamespacePrefix(ns)
	kvs, rev, err := s.store.List(ctx, prefix)
	if err != nil {
		return nil, 0, err
	}
	out := make([]runtime.Object, 0, len(kvs))
	for _, kv := range kvs {
		obj, err := decodeStored(res, kv.Value, kv.Rev)
		if err != nil {
			return nil, 0, err
		}
		if matches(obj, ls, fs) {
			out = append(out, obj)
		}
	}
	return out, rev, nil
}

func (s *Server) list(ctx context.Context, ri requestInfo, q map[string][]string) (runtime.Object, error) {
	ls, fs, err := selectors(ri.Res, q)
	if err != nil {
		return nil, err
	}
	objs, rev, err := s.listObjects(ctx, ri.Res, ri.Namespace, ls, fs)
	if err != nil {
		return nil, err
	}
	list := ri.Res.NewList()
	if err := meta.SetList(list, objs); err != nil {
		return nil, err
	}
	lm, err := meta.ListAccessor(list)
	if err != nil {
		return nil, err
	}
	lm.SetResourceVersion(strconv.FormatInt(rev, 10))
	list.GetObjectKind().SetGroupVersionKind(ri.Res.GroupVersion().WithKind(ri.Res.Kind + "List"))
	return list, nil
}

func isDryRun(q map[string][]string) bool {
	for _, v := range q["dryRun"] {
		if v == metav1.DryRunAll {
			return true
		}
	}
	return false
}

func (s *Server) createFromRequest(r *http.Request, ri requestInfo) (runtime.Object, []string, error) {
	if ri.Name != "" {
		return nil, nil, apierrors.NewMethodNotSupported(ri.Res.GroupResource(), "create with a name in the path")
	}
	body, err := readBody(r)
	if err != nil {
		return nil, nil, err
	}
	q := r.URL.Query()
	obj, warn, err := decodeObject(r, body, ri.Res, first(q["fieldValidation"]) == "Strict")
	if err != nil {
		return nil, nil, err
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(err.Error())
	}
	// The node authorizer needs the name being created (a node may create
	// only its own Node and Lease).
	if ri.Res.Plural == "nodes" || ri.Res.Plural == "leases" {
		ri.Name = m.GetName()
		if err := s.authorize(r.Context(), ri); err != nil {
			return nil, nil, err
		}
		ri.Name = ""
	}
	out, err := s.create(r.Context(), ri, obj, isDryRun(q))
	return out, warn, err
}

const nameChars = "bcdfghjklmnpqrstvwxz2456789"

func randomSuffix() string {
	b := make([]byte, 5)
	for i := range b {
		b[i] = nameChars[rand.IntN(len(nameChars))]
	}
	return string(b)
}

// create stores a new object: namespace and name, system metadata,
// defaults, validation, allocation, then one etcd transaction.
func (s *Server) create(ctx context.Context, ri requestInfo, obj runtime.Object, dryRun bool) (runtime.Object, error) {
	res := ri.Res
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if res.Namespaced {
		switch m.GetNamespace() {
		case "":
			m.SetNamespace(ri.Namespace)
		case ri.Namespace:
		default:
			return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
	} else {
		m.SetNamespace("")
	}
	generated := m.GetName() == "" && m.GetGenerateName() != ""
	m.SetUID(types.UID(uuid.NewUUID()))
	m.SetCreationTimestamp(metav1.Now())
	m.SetResourceVersion("")
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetSelfLink("")
	m.SetManagedFields(nil)
	prepareCreate(obj)
	if generated {
		m.SetName(m.GetGenerateName() + randomSuffix())
	}
	defaults.Default(obj)
	if err := s.beforeCreate(ctx, obj); err != nil {
		return nil, err
	}
	if res.Namespaced && s.namespaces.isTerminating(m.GetNamespace()) {
		return nil, apierrors.NewForbidden(res.GroupResource(), m.GetName(),
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", m.GetNamespace()))
	}
	var require []string
	if res.Namespaced {
		require = []string{resources.ByGVK(corev1.SchemeGroupVersion.WithKind("Namespace")).Key("", m.GetNamespace())}
	}
	// Only kinds that allocate (Services, Nodes) change between attempts
	// and need the request kept apart to tell chosen values from asked ones;
	// the rest write obj itself, sparing two deep copies per create.
	requested := obj
	_, isSvc := obj.(*corev1.Service)
	_, isNode := obj.(*corev1.Node)
	allocates := isSvc || isNode
	if allocates {
		requested = obj.DeepCopyObject()
	}
	for attempt := 0; ; attempt++ {
		o := requested
		if allocates {
			o = requested.DeepCopyObject()
		}
		om, _ := meta.Accessor(o)
		if generated && attempt > 0 {
			om.SetName(m.GetGenerateName() + randomSuffix())
		}
		claims, err := s.alloc.allocate(ctx, o, nil)
		if err != nil {
			return nil, err
		}
		// Validate after allocation: a Service's clusterIPs and node ports
		// are part of what must be valid.
		if errs := validation.Validate(o, nil); len(errs) > 0 {
			return nil, apierrors.NewInvalid(res.GVK().GroupKind(), om.GetName(), errs)
		}
		claims.Require = require
		if dryRun {
			return o, nil
		}
		val, err := encodeStored(o, res)
		if err != nil {
			return nil, err
		}
		rev, err := s.store.Create(ctx, res.Key(om.GetNamespace(), om.GetName()), val, claims)
		var taken *storage.ClaimTakenError
		var missing *storage.MissingError
		switch {
		case err == nil:
			om.SetResourceVersion(strconv.FormatInt(rev, 10))
			return o, nil
		case errors.As(err, &missing):
			return nil, apierrors.NewNotFound(corev1.Resource("namespaces"), om.GetNamespace())
		case errors.Is(err, storage.ErrExists):
			if generated && attempt < maxRetries {
				continue
			}
			return nil, apierrors.NewAlreadyExists(res.GroupResource(), om.GetName())
		case errors.As(err, &taken):
			cerr := claimError(o, requested, taken)
			if errors.Is(cerr, errRetryRandom) && attempt < maxRetries {
				continue
			}
			if errors.Is(cerr, errRetryRandom) {
				return nil, apierrors.NewInternalError(fmt.Errorf("allocate for %s: no free value found", om.GetName()))
			}
			return nil, cerr
		default:
			return nil, err
		}
	}
}

func (s *Server) updateFromRequest(r *http.Request, ri requestInfo) (runtime.Object, []string, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, nil, err
	}
	q := r.URL.Query()
	obj, warn, err := decodeObject(r, body, ri.Res, first(q["fieldValidation"]) == "Strict")
	if err != nil {
		return nil, nil, err
	}
	ctx := r.Context()
	kv, err := s.store.Get(ctx, ri.Res.Key(ri.Namespace, ri.Name))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, apierrors.NewNotFound(ri.Res.GroupResource(), ri.Name)
	}
	if err != nil {
		return nil, nil, err
	}
	out, err := s.update(ctx, ri, obj, kv, isDryRun(q))
	return out, warn, err
}

// update writes obj over the stored kv: optimistic concurrency on the
// resourceVersion the client sent (none means "whatever is current"), the
// fields a subresource may change, defaults, validation, allocation.
func (s *Server) update(ctx context.Context, ri requestInfo, obj runtime.Object, kv storage.KV, dryRun bool) (runtime.Object, error) {
	res := ri.Res
	old, err := decodeStored(res, kv.Value, kv.Rev)
	if err != nil {
		return nil, err
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	om, _ := meta.Accessor(old)
	if m.GetName() != ri.Name {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), ri.Name))
	}
	if res.Namespaced && m.GetNamespace() != "" && m.GetNamespace() != ri.Namespace {
		return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	m.SetNamespace(om.GetNamespace())
	if rv := m.GetResourceVersion(); rv != "" && rv != strconv.FormatInt(kv.Rev, 10) {
		return nil, conflict(res, ri.Name)
	}
	if uid := m.GetUID(); uid != "" && uid != om.GetUID() {
		return nil, apierrors.NewConflict(res.GroupResource(), ri.Name, fmt.Errorf("Precondition failed: UID in precondition: %s, UID in object meta: %s", uid, om.GetUID()))
	}
	m.SetUID(om.GetUID())
	m.SetCreationTimestamp(om.GetCreationTimestamp())
	m.SetDeletionGracePeriodSeconds(om.GetDeletionGracePeriodSeconds())
	m.SetDeletionTimestamp(om.GetDeletionTimestamp())
	m.SetSelfLink("")
	m.SetManagedFields(nil)
	switch ri.Subresource {
	case "status":
		prepareStatusUpdate(obj, old)
	case "finalize":
		if ns, ok := obj.(*corev1.Namespace); ok {
			fin := ns.Spec.Finalizers
			ons := old.(*corev1.Namespace).DeepCopy()
			ons.Spec.Finalizers = fin
			ons.ResourceVersion = ""
			obj, m = ons, ons
		}
	case "approval":
		prepareStatusUpdate(obj, old)
	case "binding":
		// Derived from the current object by the binding handler: spec.nodeName
		// and the PodScheduled condition both change.
	default:
		prepareUpdate(obj, old)
	}
	if svc, ok := obj.(*corev1.Service); ok && ri.Subresource == "" {
		defaults.DefaultServiceUpdate(svc, old.(*corev1.Service))
	}
	defaults.Default(obj)
	against := old
	if p, ok := obj.(*corev1.Pod); ok && ri.Subresource == "binding" {
		// Binding is the one write that may set spec.nodeName.
		o := old.(*corev1.Pod).DeepCopy()
		o.Spec.NodeName = p.Spec.NodeName
		against = o
	}
	_, isSvc := obj.(*corev1.Service)
	_, isNode := obj.(*corev1.Node)
	for attempt := 0; ; attempt++ {
		o := obj
		if isSvc || isNode {
			// Allocation may pick again on a retry; keep obj as asked.
			o = obj.DeepCopyObject()
		}
		claims, err := s.alloc.allocate(ctx, o, old)
		if err != nil {
			return nil, err
		}
		if errs := validation.Validate(o, against); len(errs) > 0 {
			return nil, apierrors.NewInvalid(res.GVK().GroupKind(), ri.Name, errs)
		}
		if dryRun {
			return o, nil
		}
		val, err := encodeStored(o, res)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(val, kv.Value) {
			// Nothing changed: no write, the resourceVersion stays.
			return old, nil
		}
		if done, err := s.finishDeletion(ctx, res, o, kv.Rev); done || err != nil {
			return o, err
		}
		rev, err := s.store.Update(ctx, res.Key(ri.Namespace, ri.Name), val, kv.Rev, claims)
		var taken *storage.ClaimTakenError
		switch {
		case err == nil:
			om, _ := meta.Accessor(o)
			om.SetResourceVersion(strconv.FormatInt(rev, 10))
			return o, nil
		case errors.Is(err, storage.ErrNotFound):
			return nil, apierrors.NewNotFound(res.GroupResource(), ri.Name)
		case errors.Is(err, storage.ErrConflict):
			return nil, conflict(res, ri.Name)
		case errors.As(err, &taken):
			cerr := claimError(o, obj, taken)
			if errors.Is(cerr, errRetryRandom) && attempt < maxRetries {
				continue
			}
			return nil, cerr
		default:
			return nil, err
		}
	}
}

func conflict(res *resources.Resource, name string) error {
	return apierrors.NewConflict(res.GroupResource(), name,
		errors.New("the object has been modified; please apply your changes to the latest version and try again"))
}

// finishDeletion removes an object that is being deleted once its last
// finalizer is gone (and, for a pod, once its grace period is zero).
func (s *Server) finishDeletion(ctx context.Context, res *resources.Resource, obj runtime.Object, rev int64) (bool, error) {
	m, _ := meta.Accessor(obj)
	if m.GetDeletionTimestamp() == nil || len(m.GetFinalizers()) > 0 {
		return false, nil
	}
	switch o := obj.(type) {
	case *corev1.Namespace:
		if len(o.Spec.Finalizers) > 0 {
			return false, nil
		}
	case *corev1.Pod:
		if g := o.DeletionGracePeriodSeconds; g != nil && *g > 0 {
			return false, nil
		}
	}
	_, err := s.store.Delete(ctx, res.Key(m.GetNamespace(), m.GetName()), rev, storage.Claims{Release: claimsOf(obj)})
	switch {
	case errors.Is(err, storage.ErrConflict):
		return true, conflict(res, m.GetName())
	case errors.Is(err, storage.ErrNotFound):
		return true, apierrors.NewNotFound(res.GroupResource(), m.GetName())
	}
	return true, err
}

// readModifyWrite applies change to the current object and writes it,
// retrying when a concurrent write intervened.
func (s *Server) readModifyWrite(ctx context.Context, ri requestInfo, dryRun bool, change func(obj runtime.Object) (runtime.Object, error)) (runtime.Object, error) {
	key := ri.Res.Key(ri.Namespace, ri.Name)
	for attempt := 0; ; attempt++ {
		kv, err := s.store.Get(ctx, key)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, apierrors.NewNotFound(ri.Res.GroupResource(), ri.Name)
		}
		if err != nil {
			return nil, err
		}
		cur, err := decodeStored(ri.Res, kv.Value, kv.Rev)
		if err != nil {
			return nil, err
		}
		obj, err := change(cur)
		if err != nil {
			return nil, err
		}
		out, err := s.update(ctx, ri, obj, kv, dryRun)
		if apierrors.IsConflict(err) && attempt < maxRetries {
			if m, _ := meta.Accessor(obj); m != nil && m.GetResourceVersion() != strconv.FormatInt(kv.Rev, 10) {
				return nil, err // the client's own precondition failed
			}
			continue
		}
		return out, err
	}
}

func (s *Server) patchFromRequest(r *http.Request, ri requestInfo) (runtime.Object, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	pt := types.PatchType(strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]))
	q := r.URL.Query()
	strict := first(q["fieldValidation"]) == "Strict"
	return s.readModifyWrite(r.Context(), ri, isDryRun(q), func(cur runtime.Object) (runtime.Object, error) {
		return applyPatch(ri.Res, cur, pt, body, strict)
	})
}

func deleteOptions(r *http.Request) (metav1.DeleteOptions, error) {
	var opts metav1.DeleteOptions
	body, err := readBody(r)
	if err != nil {
		return opts, err
	}
	if err := decodeInto(r, body, &opts); err != nil {
		return opts, err
	}
	q := r.URL.Query()
	if v := first(q["gracePeriodSeconds"]); v != "" {
		g, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return opts, apierrors.NewBadRequest(fmt.Sprintf("invalid gracePeriodSeconds %q", v))
		}
		opts.GracePeriodSeconds = &g
	}
	if v := first(q["propagationPolicy"]); v != "" {
		p := metav1.DeletionPropagation(v)
		opts.PropagationPolicy = &p
	}
	if v := first(q["orphanDependents"]); v != "" {
		b := v == "true"
		opts.OrphanDependents = &b
	}
	if isDryRun(q) {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if p := opts.PropagationPolicy; p != nil {
		switch *p {
		case metav1.DeletePropagationBackground, metav1.DeletePropagationForeground, metav1.DeletePropagationOrphan:
		default:
			return opts, apierrors.NewBadRequest(fmt.Sprintf("propagationPolicy: Unsupported value: %q: supported values: \"Foreground\", \"Background\", \"Orphan\"", *p))
		}
	}
	return opts, nil
}

func (s *Server) deleteFromRequest(r *http.Request, ri requestInfo) (runtime.Object, int, error) {
	opts, err := deleteOptions(r)
	if err != nil {
		return nil, 0, err
	}
	return s.delete(r.Context(), ri, opts)
}

// Finalizers the garbage collector acts on.
const (
	FinalizerForeground = metav1.FinalizerDeleteDependents // "foregroundDeletion"
	FinalizerOrphan     = metav1.FinalizerOrphanDependents // "orphan"
)

// delete removes an object now, or marks it for deletion when finalizers,
// a dependents policy, a namespace's content or a pod's grace period must
// run first. It answers 200 with the object either way, as Kubernetes does.
func (s *Server) delete(ctx context.Context, ri requestInfo, opts metav1.DeleteOptions) (runtime.Object, int, error) {
	res := ri.Res
	if res == namespacesRes && immortalNamespaces[ri.Name] {
		return nil, 0, apierrors.NewForbidden(res.GroupResource(), ri.Name, fmt.Errorf("this namespace may not be deleted"))
	}
	key := res.Key(ri.Namespace, ri.Name)
	dryRun := len(opts.DryRun) > 0
	for attempt := 0; ; attempt++ {
		kv, err := s.store.Get(ctx, key)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, 0, apierrors.NewNotFound(res.GroupResource(), ri.Name)
		}
		if err != nil {
			return nil, 0, err
		}
		obj, err := decodeStored(res, kv.Value, kv.Rev)
		if err != nil {
			return nil, 0, err
		}
		m, _ := meta.Accessor(obj)
		if p := opts.Preconditions; p != nil {
			if p.UID != nil && *p.UID != m.GetUID() {
				return nil, 0, apierrors.NewConflict(res.GroupResource(), ri.Name, fmt.Errorf("Precondition failed: UID in precondition: %s, UID in object meta: %s", *p.UID, m.GetUID()))
			}
			if p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion() {
				return nil, 0, apierrors.NewConflict(res.GroupResource(), ri.Name, fmt.Errorf("Precondition failed: ResourceVersion in precondition: %s, ResourceVersion in object meta: %s", *p.ResourceVersion, m.GetResourceVersion()))
			}
		}
		graceful, changed := markDeletion(obj, opts)
		if dryRun {
			return obj, http.StatusOK, nil
		}
		if graceful {
			if !changed {
				return obj, http.StatusOK, nil
			}
			val, err := encodeStored(obj, res)
			if err != nil {
				return nil, 0, err
			}
			rev, err := s.store.Update(ctx, key, val, kv.Rev, storage.Claims{})
			if errors.Is(err, storage.ErrConflict) && attempt < maxRetries {
				continue
			}
			if err != nil {
				return nil, 0, mapStoreErr(err, res, ri.Name)
			}
			m.SetResourceVersion(strconv.FormatInt(rev, 10))
			return obj, http.StatusOK, nil
		}
		_, err = s.store.Delete(ctx, key, kv.Rev, storage.Claims{Release: claimsOf(obj)})
		if errors.Is(err, storage.ErrConflict) && attempt < maxRetries {
			continue
		}
		if err != nil {
			return nil, 0, mapStoreErr(err, res, ri.Name)
		}
		return obj, http.StatusOK, nil
	}
}

func mapStoreErr(err error, res *resources.Resource, name string) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return apierrors.NewNotFound(res.GroupResource(), name)
	case errors.Is(err, storage.ErrConflict):
		return conflict(res, name)
	case errors.Is(err, storage.ErrExists):
		return apierrors.NewAlreadyExists(res.GroupResource(), name)
	}
	return err
}

// markDeletion decides whether obj goes at once (graceful false) or is
// marked and kept; changed says the mark is new or shorter.
func markDeletion(obj runtime.Object, opts metav1.DeleteOptions) (graceful, changed bool) {
	m, _ := meta.Accessor(obj)
	policy := metav1.DeletePropagationBackground
	if opts.OrphanDependents != nil && *opts.OrphanDependents {
		policy = metav1.DeletePropagationOrphan
	}
	if opts.PropagationPolicy != nil {
		policy = *opts.PropagationPolicy
	}
	fins := m.GetFinalizers()
	addFin := func(f string) {
		for _, x := range fins {
			if x == f {
				return
			}
		}
		fins = append(fins, f)
		changed = true
	}
	switch policy {
	case metav1.DeletePropagationForeground:
		addFin(FinalizerForeground)
	case metav1.DeletePropagationOrphan:
		addFin(FinalizerOrphan)
	}
	m.SetFinalizers(fins)
	now := metav1.Now()
	switch o := obj.(type) {
	case *corev1.Pod:
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		if o.Spec.TerminationGracePeriodSeconds != nil {
			grace = *o.Spec.TerminationGracePeriodSeconds
		}
		if opts.GracePeriodSeconds != nil {
			grace = *opts.GracePeriodSeconds
		}
		// Only a pod a node runs needs time to stop; the node's agent
		// finishes the delete with grace 0.
		terminal := o.Status.Phase == corev1.PodSucceeded || o.Status.Phase == corev1.PodFailed
		if o.Spec.NodeName == "" || terminal {
			grace = 0
		}
		if cur := o.DeletionGracePeriodSeconds; cur != nil && *cur <= grace {
			return true, changed
		}
		if grace > 0 || len(fins) > 0 {
			t := metav1.NewTime(now.Add(time.Duration(grace) * time.Second))
			o.DeletionTimestamp = &t
			o.DeletionGracePeriodSeconds = &grace
			return true, true
		}
		return false, false
	case *corev1.Namespace:
		if o.DeletionTimestamp == nil {
			o.DeletionTimestamp = &now
			o.Status.Phase = corev1.NamespaceTerminating
			zero := int64(0)
			o.DeletionGracePeriodSeconds = &zero
			changed = true
		}
		return len(o.Spec.Finalizers) > 0 || len(fins) > 0, changed
	}
	if len(fins) == 0 {
		return false, false
	}
	if m.GetDeletionTimestamp() == nil {
		m.SetDeletionTimestamp(&now)
		zero := int64(0)
		m.SetDeletionGracePeriodSeconds(&zero)
		changed = true
	}
	return true, changed
}

func (s *Server) deleteCollection(r *http.Request, ri requestInfo) (runtime.Object, error) {
	opts, err := deleteOptions(r)
	if err != nil {
		return nil, err
	}
	ls, fs, err := selectors(ri.Res, r.URL.Query())
	if err != nil {
		return nil, err
	}
	objs, _, err := s.listObjects(r.Context(), ri.Res, ri.Namespace, ls, fs)
	if err != nil {
		return nil, err
	}
	var deleted []runtime.Object
	for _, o := range objs {
		m, _ := meta.Accessor(o)
		one := ri
		one.Namespace, one.Name = m.GetNamespace(), m.GetName()
		d, _, err := s.delete(r.Context(), one, opts)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		deleted = append(deleted, d)
	}
	list := ri.Res.NewList()
	if err := meta.SetList(list, deleted); err != nil {
		return nil, err
	}
	list.GetObjectKind().SetGroupVersionKind(ri.Res.GroupVersion().WithKind(ri.Res.Kind + "List"))
	return list, nil
}

// Package resources is the table of kinds the API server serves: their
// group, version, plural and kind, whether they are namespaced, their short
// names and subresources, and the scheme that decodes them.
package resources

import (
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	appsv1beta1 "k8s.io/api/apps/v1beta1"
	appsv1beta2 "k8s.io/api/apps/v1beta2"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	batchv1beta1 "k8s.io/api/batch/v1beta1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
)

// Scheme knows every type the server reads or writes, including the legacy
// versions it accepts on the way in. It is read-only after init and safe for
// concurrent use.
var Scheme = runtime.NewScheme()

// Codecs decodes JSON, YAML and Kubernetes protobuf bodies over Scheme.
var Codecs serializer.CodecFactory

func init() {
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		discoveryv1.AddToScheme, coordinationv1.AddToScheme,
		autoscalingv1.AddToScheme, autoscalingv2.AddToScheme,
		certificatesv1.AddToScheme, policyv1.AddToScheme,
		extensionsv1beta1.AddToScheme, appsv1beta1.AddToScheme,
		appsv1beta2.AddToScheme, batchv1beta1.AddToScheme,
	} {
		if err := add(Scheme); err != nil {
			panic(fmt.Sprintf("build scheme: %v", err))
		}
	}
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	Codecs = serializer.NewCodecFactory(Scheme)
}

// Resource describes one served resource. Values are immutable once built.
type Resource struct {
	Group      string
	Version    string
	Plural     string
	Singular   string
	Kind       string
	Namespaced bool
	ShortNames []string
	// Subresources served under this resource, e.g. "status", "scale".
	Subresources []string
	Categories   []string
}

// GroupVersion is the resource's group/version.
func (r *Resource) GroupVersion() schema.GroupVersion {
	return schema.GroupVersion{Group: r.Group, Version: r.Version}
}

// GVK is the resource's group/version/kind.
func (r *Resource) GVK() schema.GroupVersionKind {
	return r.GroupVersion().WithKind(r.Kind)
}

// GVR is the resource's group/version/resource.
func (r *Resource) GVR() schema.GroupVersionResource {
	return r.GroupVersion().WithResource(r.Plural)
}

// APIVersion is the apiVersion string objects of this resource carry.
func (r *Resource) APIVersion() string { return r.GroupVersion().String() }

// GroupResource is the "plural.group" form Kubernetes uses in messages
// ("deployments.apps", "pods").
func (r *Resource) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: r.Group, Resource: r.Plural}
}

// New returns an empty object of the resource's kind.
func (r *Resource) New() runtime.Object {
	o, err := Scheme.New(r.GVK())
	if err != nil {
		panic(fmt.Sprintf("resource %s has no type: %v", r.Plural, err))
	}
	return o
}

// NewList returns an empty list of the resource's kind.
func (r *Resource) NewList() runtime.Object {
	o, err := Scheme.New(r.GroupVersion().WithKind(r.Kind + "List"))
	if err != nil {
		panic(fmt.Sprintf("resource %s has no list type: %v", r.Plural, err))
	}
	return o
}

// HasSubresource reports whether sub is served under this resource.
func (r *Resource) HasSubresource(sub string) bool {
	for _, s := range r.Subresources {
		if s == sub {
			return true
		}
	}
	return false
}

// KeyPrefix is the etcd prefix that holds every object of the resource:
// /registry/{group}/{plural}/, with "core" for the legacy group.
func (r *Resource) KeyPrefix() string {
	g := r.Group
	if g == "" {
		g = "core"
	}
	return "/registry/" + g + "/" + r.Plural + "/"
}

// NamespacePrefix is the etcd prefix of the resource's objects in ns.
func (r *Resource) NamespacePrefix(ns string) string {
	if !r.Namespaced || ns == "" {
		return r.KeyPrefix()
	}
	return r.KeyPrefix() + ns + "/"
}

// Key is the etcd key of one object.
func (r *Resource) Key(ns, name string) string {
	if r.Namespaced {
		return r.KeyPrefix() + ns + "/" + name
	}
	return r.KeyPrefix() + name
}

var all = []*Resource{
	{Version: "v1", Plural: "namespaces", Singular: "namespace", Kind: "Namespace", ShortNames: []string{"ns"}, Subresources: []string{"status", "finalize"}},
	{Version: "v1", Plural: "nodes", Singular: "node", Kind: "Node", ShortNames: []string{"no"}, Subresources: []string{"status"}},
	{Version: "v1", Plural: "pods", Singular: "pod", Kind: "Pod", Namespaced: true, ShortNames: []string{"po"}, Subresources: []string{"status", "binding", "eviction", "log", "exec"}, Categories: []string{"all"}},
	{Version: "v1", Plural: "services", Singular: "service", Kind: "Service", Namespaced: true, ShortNames: []string{"svc"}, Subresources: []string{"status"}, Categories: []string{"all"}},
	{Version: "v1", Plural: "endpoints", Singular: "endpoints", Kind: "Endpoints", Namespaced: true, ShortNames: []string{"ep"}},
	{Version: "v1", Plural: "configmaps", Singular: "configmap", Kind: "ConfigMap", Namespaced: true, ShortNames: []string{"cm"}},
	{Version: "v1", Plural: "secrets", Singular: "secret", Kind: "Secret", Namespaced: true},
	{Version: "v1", Plural: "events", Singular: "event", Kind: "Event", Namespaced: true, ShortNames: []string{"ev"}},
	{Group: "discovery.k8s.io", Version: "v1", Plural: "endpointslices", Singular: "endpointslice", Kind: "EndpointSlice", Namespaced: true},
	{Group: "coordination.k8s.io", Version: "v1", Plural: "leases", Singular: "lease", Kind: "Lease", Namespaced: true},
	{Group: "apps", Version: "v1", Plural: "deployments", Singular: "deployment", Kind: "Deployment", Namespaced: true, ShortNames: []string{"deploy"}, Subresources: []string{"status", "scale"}, Categories: []string{"all"}},
	{Group: "apps", Version: "v1", Plural: "replicasets", Singular: "replicaset", Kind: "ReplicaSet", Namespaced: true, ShortNames: []string{"rs"}, Subresources: []string{"status", "scale"}, Categories: []string{"all"}},
	{Group: "apps", Version: "v1", Plural: "daemonsets", Singular: "daemonset", Kind: "DaemonSet", Namespaced: true, ShortNames: []string{"ds"}, Subresources: []string{"status"}, Categories: []string{"all"}},
	{Group: "apps", Version: "v1", Plural: "statefulsets", Singular: "statefulset", Kind: "StatefulSet", Namespaced: true, ShortNames: []string{"sts"}, Subresources: []string{"status", "scale"}, Categories: []string{"all"}},
	{Group: "apps", Version: "v1", Plural: "controllerrevisions", Singular: "controllerrevision", Kind: "ControllerRevision", Namespaced: true},
	{Group: "batch", Version: "v1", Plural: "jobs", Singular: "job", Kind: "Job", Namespaced: true, Subresources: []string{"status"}, Categories: []string{"all"}},
	{Group: "batch", Version: "v1", Plural: "cronjobs", Singular: "cronjob", Kind: "CronJob", Namespaced: true, ShortNames: []string{"cj"}, Subresources: []string{"status"}, Categories: []string{"all"}},
	{Group: "autoscaling", Version: "v2", Plural: "horizontalpodautoscalers", Singular: "horizontalpodautoscaler", Kind: "HorizontalPodAutoscaler", Namespaced: true, ShortNames: []string{"hpa"}, Subresources: []string{"status"}, Categories: []string{"all"}},
	{Group: "certificates.k8s.io", Version: "v1", Plural: "certificatesigningrequests", Singular: "certificatesigningrequest", Kind: "CertificateSigningRequest", ShortNames: []string{"csr"}, Subresources: []string{"status", "approval"}},
}

// legacy maps a legacy group/version to the kinds it still carries; objects
// sent there are converted to the current version.
var legacy = map[schema.GroupVersion][]string{
	{Group: "extensions", Version: "v1beta1"}: {"deployments", "daemonsets", "replicasets"},
	{Group: "apps", Version: "v1beta1"}:       {"deployments", "statefulsets", "controllerrevisions"},
	{Group: "apps", Version: "v1beta2"}:       {"deployments", "daemonsets", "replicasets", "statefulsets", "controllerrevisions"},
	{Group: "batch", Version: "v1beta1"}:      {"cronjobs"},
	{Group: "batch", Version: "v2alpha1"}:     {"cronjobs"},
}

var (
	byGVR  = map[schema.GroupVersionResource]*Resource{}
	byGVK  = map[schema.GroupVersionKind]*Resource{}
	byName = map[string][]*Resource{}
)

func init() {
	for _, r := range all {
		byGVR[r.GVR()] = r
		byGVK[r.GVK()] = r
		for _, n := range append([]string{r.Plural, r.Singular, r.Kind}, r.ShortNames...) {
			byName[lower(n)] = append(byName[lower(n)], r)
		}
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// All returns every served resource in discovery order.
func All() []*Resource { return all }

// ByGVR finds a resource by group, version and plural; it also resolves a
// legacy group/version to the current resource (legacy reports that).
func ByGVR(gvr schema.GroupVersionResource) (r *Resource, legacyGV bool) {
	if r, ok := byGVR[gvr]; ok {
		return r, false
	}
	for _, p := range legacy[gvr.GroupVersion()] {
		if p == gvr.Resource {
			for _, r := range all {
				if r.Plural == p && (r.Group == gvr.Group || gvr.Group == "extensions") {
					return r, true
				}
			}
		}
	}
	return nil, false
}

// ByGVK finds the current resource of a kind.
func ByGVK(gvk schema.GroupVersionKind) *Resource { return byGVK[gvk] }

// ByKindName finds resources by plural, singular, kind or short name,
// case-insensitively ("po", "pods", "Pod"); a "name.group" form narrows the group.
func ByKindName(name string) []*Resource { return byName[lower(name)] }

// GroupVersions lists every served group/version, current first, then the
// legacy ones, each group's versions together.
func GroupVersions() []schema.GroupVersion {
	seen := map[schema.GroupVersion]bool{}
	var out []schema.GroupVersion
	for _, r := range all {
		if gv := r.GroupVersion(); !seen[gv] {
			seen[gv] = true
			out = append(out, gv)
		}
	}
	var leg []schema.GroupVersion
	for gv := range legacy {
		leg = append(leg, gv)
	}
	sort.Slice(leg, func(i, j int) bool { return leg[i].String() < leg[j].String() })
	return append(out, leg...)
}

// InGroupVersion lists the resources served at gv (for a legacy gv, the
// current resources it converts to).
func InGroupVersion(gv schema.GroupVersion) []*Resource {
	var out []*Resource
	for _, r := range all {
		if r.GroupVersion() == gv {
			out = append(out, r)
		}
	}
	for _, p := range legacy[gv] {
		if r, _ := ByGVR(gv.WithResource(p)); r != nil {
			out = append(out, r)
		}
	}
	return out
}

// IsLegacy reports whether gv is a legacy version accepted only for conversion.
func IsLegacy(gv schema.GroupVersion) bool {
	_, ok := legacy[gv]
	return ok
}

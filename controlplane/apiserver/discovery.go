package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"weir.dev/weir/controlplane/resources"
)

// Discovery answers with the plain (unaggregated) documents; clients that
// ask for aggregated discovery first fall back to them.

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok"))
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if _, err := s.store.Revision(r.Context()); err != nil {
		http.Error(w, "etcd: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok"))
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	v := strings.TrimPrefix(s.cfg.Version, "v")
	major, minor := "1", "37"
	if parts := strings.SplitN(v, ".", 3); len(parts) >= 2 {
		major, minor = parts[0], parts[1]
	}
	writeObject(w, r, http.StatusOK, version.Info{
		Major: major, Minor: minor, GitVersion: s.cfg.Version,
		GoVersion: runtime.Version(), Compiler: runtime.Compiler,
		Platform: runtime.GOOS + "/" + runtime.GOARCH,
	})
}

func (s *Server) discoveryAPI(w http.ResponseWriter, r *http.Request) {
	writeObject(w, r, http.StatusOK, &metav1.APIVersions{
		TypeMeta: metav1.TypeMeta{Kind: "APIVersions"},
		Versions: []string{"v1"},
		ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{
			{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host},
		},
	})
}

func groups() []metav1.APIGroup {
	var out []metav1.APIGroup
	idx := map[string]int{}
	for _, gv := range resources.GroupVersions() {
		if gv.Group == "" {
			continue
		}
		gvd := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
		i, ok := idx[gv.Group]
		if !ok {
			idx[gv.Group] = len(out)
			out = append(out, metav1.APIGroup{Name: gv.Group, PreferredVersion: gvd})
			i = len(out) - 1
		}
		out[i].Versions = append(out[i].Versions, gvd)
	}
	return out
}

func (s *Server) discoveryAPIs(w http.ResponseWriter, r *http.Request) {
	writeObject(w, r, http.StatusOK, &metav1.APIGroupList{
		TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"},
		Groups:   groups(),
	})
}

// serveDiscoveryPath answers /api/v1, /apis/{g} and /apis/{g}/{v}; false
// when the path is a resource path instead.
func (s *Server) serveDiscoveryPath(w http.ResponseWriter, r *http.Request) bool {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var gv schema.GroupVersion
	switch {
	case len(parts) == 2 && parts[0] == "api":
		gv = schema.GroupVersion{Version: parts[1]}
	case len(parts) == 2 && parts[0] == "apis":
		for _, g := range groups() {
			if g.Name == parts[1] {
				writeObject(w, r, http.StatusOK, &metav1.APIGroup{TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"},
					Name: g.Name, Versions: g.Versions, PreferredVersion: g.PreferredVersion})
				return true
			}
		}
		writeError(w, notFoundPath())
		return true
	case len(parts) == 3 && parts[0] == "apis":
		gv = schema.GroupVersion{Group: parts[1], Version: parts[2]}
	default:
		return false
	}
	rs := resources.InGroupVersion(gv)
	if len(rs) == 0 {
		writeError(w, notFoundPath())
		return true
	}
	list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv.String()}
	verbs := metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	legacy := resources.IsLegacy(gv)
	for _, res := range rs {
		ar := metav1.APIResource{
			Name: res.Plural, SingularName: res.Singular, Namespaced: res.Namespaced,
			Kind: res.Kind, Verbs: verbs, ShortNames: res.ShortNames, Categories: res.Categories,
		}
		if legacy {
			// Served only so old manifests map to a path; short names and
			// categories stay with the current version, or kubectl warns
			// that "deploy" is ambiguous.
			ar.ShortNames, ar.Categories = nil, nil
		}
		list.APIResources = append(list.APIResources, ar)
		if legacy {
			continue
		}
		for _, sub := range res.Subresources {
			sr := metav1.APIResource{Name: res.Plural + "/" + sub, Namespaced: res.Namespaced, Kind: res.Kind}
			switch sub {
			case "status", "scale", "finalize", "approval":
				sr.Verbs = metav1.Verbs{"get", "patch", "update"}
				if sub == "scale" {
					sr.Group, sr.Version, sr.Kind = "autoscaling", "v1", "Scale"
				}
			case "binding":
				sr.Verbs, sr.Kind = metav1.Verbs{"create"}, "Binding"
			case "eviction":
				sr.Verbs, sr.Group, sr.Version, sr.Kind = metav1.Verbs{"create"}, "policy", "v1", "Eviction"
			case "log":
				sr.Verbs = metav1.Verbs{"get"}
			case "exec":
				sr.Verbs, sr.Kind = metav1.Verbs{"create", "get"}, "PodExecOptions"
			}
			list.APIResources = append(list.APIResources, sr)
		}
	}
	writeObject(w, r, http.StatusOK, list)
	return true
}

// openapi serves the smallest OpenAPI v3 documents kubectl needs to use
// server-side field validation: one patch operation per kind carrying its
// group/version/kind and the fieldValidation parameter.
func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/openapi/v3")
	if !strings.HasPrefix(r.URL.Path, "/openapi/v3") {
		writeError(w, notFoundPath())
		return
	}
	if path == "" || path == "/" {
		paths := map[string]any{}
		for _, gv := range resources.GroupVersions() {
			p := gvPath(gv)
			paths[p] = map[string]string{"serverRelativeURL": "/openapi/v3/" + p + "?hash=weir"}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"paths": paths})
		return
	}
	p := strings.TrimPrefix(path, "/")
	for _, gv := range resources.GroupVersions() {
		if gvPath(gv) != p {
			continue
		}
		paths := map[string]any{}
		for _, res := range resources.InGroupVersion(gv) {
			url := "/" + p + "/"
			if res.Namespaced {
				url += "namespaces/{namespace}/"
			}
			url += res.Plural + "/{name}"
			paths[url] = map[string]any{"patch": map[string]any{
				"operationId":                     "patch" + res.Kind,
				"parameters":                      []map[string]any{{"name": "fieldValidation", "in": "query", "schema": map[string]string{"type": "string"}}},
				"x-kubernetes-group-version-kind": map[string]string{"group": gv.Group, "version": gv.Version, "kind": res.Kind},
				"responses":                       map[string]any{"200": map[string]string{"description": "OK"}},
			}}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"openapi": "3.0.0", "info": map[string]string{"title": "weir", "version": s.cfg.Version}, "paths": paths,
		})
		return
	}
	writeError(w, notFoundPath())
}

func gvPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return fmt.Sprintf("apis/%s/%s", gv.Group, gv.Version)
}

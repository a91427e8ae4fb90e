package apiserver

import (
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"weir.dev/weir/controlplane/resources"
)

// requestInfo is what a resource request's method and path name.
type requestInfo struct {
	Verb        string // get list watch create update patch delete deletecollection
	GV          schema.GroupVersion
	Legacy      bool // GV is a legacy version converted on the way in
	Res         *resources.Resource
	Namespace   string
	Name        string
	Subresource string
}

// parseResourcePath parses /api/v1/... and /apis/{g}/{v}/... resource paths.
// ok is false when the path names no served resource.
func parseResourcePath(method, path string, q map[string][]string) (requestInfo, bool) {
	var ri requestInfo
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 3 && parts[0] == "api" && parts[1] == "v1":
		ri.GV = schema.GroupVersion{Version: "v1"}
		parts = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		ri.GV = schema.GroupVersion{Group: parts[1], Version: parts[2]}
		parts = parts[3:]
	default:
		return ri, false
	}
	// namespaces/{ns}/{resource}/... unless the rest names the namespace
	// object itself or one of its subresources.
	if len(parts) >= 3 && parts[0] == "namespaces" {
		if r, _ := resources.ByGVR(ri.GV.WithResource(parts[2])); r != nil && r.Namespaced {
			ri.Namespace = parts[1]
			parts = parts[2:]
		}
	}
	r, legacy := resources.ByGVR(ri.GV.WithResource(parts[0]))
	if r == nil {
		return ri, false
	}
	ri.Res, ri.Legacy = r, legacy
	if len(parts) > 1 {
		ri.Name = parts[1]
	}
	if len(parts) > 2 {
		ri.Subresource = parts[2]
	}
	if len(parts) > 3 {
		return ri, false
	}
	watching := isTrue(q["watch"])
	switch method {
	case http.MethodGet, http.MethodHead:
		switch {
		case watching:
			ri.Verb = "watch"
		case ri.Name == "":
			ri.Verb = "list"
		default:
			ri.Verb = "get"
		}
	case http.MethodPost:
		ri.Verb = "create"
	case http.MethodPut:
		ri.Verb = "update"
	case http.MethodPatch:
		ri.Verb = "patch"
	case http.MethodDelete:
		if ri.Name == "" {
			ri.Verb = "deletecollection"
		} else {
			ri.Verb = "delete"
		}
	default:
		return ri, false
	}
	return ri, true
}

func isTrue(v []string) bool {
	return len(v) > 0 && (v[0] == "1" || v[0] == "true")
}

package conversion

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// legacyKind says how one removed group/version/kind maps onto the current
// one.
type legacyKind struct {
	current schema.GroupVersionKind
	// deprecated and removed are the Kubernetes minor versions quoted in the
	// warning.
	deprecated, removed string
	// selectorFromTemplate: the old version defaulted a missing selector
	// to the template's labels. apps/v1beta2 required a selector instead;
	// weir fills it there too, since an old manifest that omits it can mean
	// nothing else.
	selectorFromTemplate bool
	// labelsFromTemplate: the old version also gave an unlabelled object
	// its template's labels.
	labelsFromTemplate bool
	// onDeleteByDefault: the old version's update strategy defaulted to
	// OnDelete, so an object without one must not start rolling its Pods.
	onDeleteByDefault bool
	// drop lists spec fields the current version does not have.
	drop []string
}

var (
	extensionsV1beta1 = schema.GroupVersion{Group: "extensions", Version: "v1beta1"}
	appsV1beta1       = schema.GroupVersion{Group: "apps", Version: "v1beta1"}
	appsV1beta2       = schema.GroupVersion{Group: "apps", Version: "v1beta2"}
	batchV1beta1      = schema.GroupVersion{Group: "batch", Version: "v1beta1"}
	batchV2alpha1     = schema.GroupVersion{Group: "batch", Version: "v2alpha1"}

	appsV1  = schema.GroupVersion{Group: "apps", Version: "v1"}
	batchV1 = schema.GroupVersion{Group: "batch", Version: "v1"}
)

var legacyGroupVersions = map[schema.GroupVersion]bool{
	extensionsV1beta1: true,
	appsV1beta1:       true,
	appsV1beta2:       true,
	batchV1beta1:      true,
	batchV2alpha1:     true,
}

var legacyKinds = map[schema.GroupVersionKind]legacyKind{
	extensionsV1beta1.WithKind("Deployment"): {
		current: appsV1.WithKind("Deployment"), deprecated: "1.8", removed: "1.16",
		selectorFromTemplate: true, labelsFromTemplate: true,
		// rollbackTo was the old rollback API; kubectl rollout undo
		// replaced it.
		drop: []string{"rollbackTo"},
	},
	extensionsV1beta1.WithKind("DaemonSet"): {
		current: appsV1.WithKind("DaemonSet"), deprecated: "1.8", removed: "1.16",
		selectorFromTemplate: true, labelsFromTemplate: true, onDeleteByDefault: true,
		// templateGeneration was superseded by ControllerRevisions.
		drop: []string{"templateGeneration"},
	},
	extensionsV1beta1.WithKind("ReplicaSet"): {
		current: appsV1.WithKind("ReplicaSet"), deprecated: "1.8", removed: "1.16",
		selectorFromTemplate: true, labelsFromTemplate: true,
	},
	appsV1beta1.WithKind("Deployment"): {
		current: appsV1.WithKind("Deployment"), deprecated: "1.8", removed: "1.16",
		selectorFromTemplate: true, labelsFromTemplate: true,
		drop: []string{"rollbackTo"},
	},
	appsV1beta1.WithKind("StatefulSet"): {
		current: appsV1.WithKind("StatefulSet"), deprecated: "1.8", removed: "1.16",
		selectorFromTemplate: true, labelsFromTemplate: true, onDeleteByDefault: true,
	},
	appsV1beta1.WithKind("ControllerRevision"): {
		current: appsV1.WithKind("ControllerRevision"), deprecated: "1.8", removed: "1.16",
	},
	appsV1beta2.WithKind("Deployment"): {
		current: appsV1.WithKind("Deployment"), deprecated: "1.9", removed: "1.16",
		selectorFromTemplate: true,
	},
	appsV1beta2.WithKind("DaemonSet"): {
		current: appsV1.WithKind("DaemonSet"), deprecated: "1.9", removed: "1.16",
		selectorFromTemplate: true,
		drop:                 []string{"templateGeneration"},
	},
	appsV1beta2.WithKind("ReplicaSet"): {
		current: appsV1.WithKind("ReplicaSet"), deprecated: "1.9", removed: "1.16",
		selectorFromTemplate: true,
	},
	appsV1beta2.WithKind("StatefulSet"): {
		current: appsV1.WithKind("StatefulSet"), deprecated: "1.9", removed: "1.16",
		selectorFromTemplate: true,
	},
	appsV1beta2.WithKind("ControllerRevision"): {
		current: appsV1.WithKind("ControllerRevision"), deprecated: "1.9", removed: "1.16",
	},
	batchV1beta1.WithKind("CronJob"): {
		current: batchV1.WithKind("CronJob"), deprecated: "1.21", removed: "1.25",
	},
	batchV2alpha1.WithKind("CronJob"): {
		current: batchV1.WithKind("CronJob"), deprecated: "1.8", removed: "1.21",
	},
}

// ErrNotObject reports a body that is valid JSON but not a JSON object.
var ErrNotObject = errors.New("conversion: body is not a JSON object")

// IsLegacy reports whether gv is one of the removed API versions weir
// accepts manifests for. Not every kind of a legacy version is converted;
// CurrentFor says which are.
func IsLegacy(gv schema.GroupVersion) bool {
	return legacyGroupVersions[gv]
}

// CurrentFor returns the group/version/kind weir stores a legacy gvk as, and
// true; for anything Upgrade does not convert it returns gvk unchanged and
// false.
func CurrentFor(gvk schema.GroupVersionKind) (schema.GroupVersionKind, bool) {
	lk, ok := legacyKinds[gvk]
	if !ok {
		return gvk, false
	}
	return lk.current, true
}

// Upgrade rewrites a JSON object of a legacy kind as its current version.
// It returns the rewritten body, the group/version/kind the body declared and
// a deprecation warning in Kubernetes' wording for the client. A body of any
// other kind, or without apiVersion or kind, comes back unchanged with an
// empty warning. Malformed JSON, trailing data or a body that is not an
// object is an error; apiVersion or kind that are not strings are too.
// Upgrade never reads the store and is safe for concurrent use.
func Upgrade(body []byte) (out []byte, from schema.GroupVersionKind, warning string, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	// Numbers stay as written: a float64 round trip would change large
	// integers such as resource versions.
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, schema.GroupVersionKind{}, "", fmt.Errorf("conversion: decode body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, schema.GroupVersionKind{}, "", errors.New("conversion: decode body: unexpected data after the object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, schema.GroupVersionKind{}, "", ErrNotObject
	}
	apiVersion, err := stringField(obj, "apiVersion")
	if err != nil {
		return nil, schema.GroupVersionKind{}, "", err
	}
	kind, err := stringField(obj, "kind")
	if err != nil {
		return nil, schema.GroupVersionKind{}, "", err
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		// Not ours to judge; decoding will say what is wrong with it.
		return body, schema.GroupVersionKind{Kind: kind}, "", nil
	}
	from = gv.WithKind(kind)
	lk, ok := legacyKinds[from]
	if !ok {
		return body, from, "", nil
	}

	upgrade(obj, lk)
	out, err = json.Marshal(obj)
	if err != nil {
		return nil, from, "", fmt.Errorf("conversion: encode %s: %w", from.Kind, err)
	}
	warning = fmt.Sprintf("%s %s is deprecated in v%s+, unavailable in v%s+; use %s %s",
		gv, kind, lk.deprecated, lk.removed, lk.current.GroupVersion(), lk.current.Kind)
	return out, from, warning, nil
}

func stringField(obj map[string]any, name string) (string, error) {
	v, ok := obj[name]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("conversion: %s must be a string, not %T", name, v)
	}
	return s, nil
}

func upgrade(obj map[string]any, lk legacyKind) {
	obj["apiVersion"] = lk.current.GroupVersion().String()
	spec, _ := obj["spec"].(map[string]any)
	if spec == nil {
		return
	}
	for _, f := range lk.drop {
		delete(spec, f)
	}
	templateLabels := nestedMap(spec, "template", "metadata", "labels")
	if lk.selectorFromTemplate && isNullOrMissing(spec, "selector") && len(templateLabels) > 0 {
		spec["selector"] = map[string]any{"matchLabels": maps.Clone(templateLabels)}
	}
	if lk.labelsFromTemplate && len(templateLabels) > 0 {
		meta, _ := obj["metadata"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
			obj["metadata"] = meta
		}
		if labels, _ := meta["labels"].(map[string]any); len(labels) == 0 {
			meta["labels"] = maps.Clone(templateLabels)
		}
	}
	if lk.onDeleteByDefault {
		strategy, _ := spec["updateStrategy"].(map[string]any)
		if strategy == nil {
			strategy = map[string]any{}
			spec["updateStrategy"] = strategy
		}
		if t, _ := strategy["type"].(string); t == "" {
			strategy["type"] = "OnDelete"
		}
	}
}

func isNullOrMissing(m map[string]any, key string) bool {
	v, ok := m[key]
	return !ok || v == nil
}

// nestedMap follows path through nested JSON objects and returns the object
// at its end, or nil.
func nestedMap(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		next, ok := m[p].(map[string]any)
		if !ok {
			return nil
		}
		m = next
	}
	return m
}

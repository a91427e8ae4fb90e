package manifest

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/jsonmergepatch"
	"k8s.io/apimachinery/pkg/util/mergepatch"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes/scheme"
)

// LastAppliedAnnotation holds the configuration last applied, as kubectl
// keeps it.
const LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// Modified returns the object to send for u and the configuration it
// records: u with the last-applied annotation set to u's own JSON
// (without that annotation), as kubectl's client-side apply writes it.
func Modified(u *unstructured.Unstructured) (modified []byte, err error) {
	c := u.DeepCopy()
	ann := c.GetAnnotations()
	delete(ann, LastAppliedAnnotation)
	if len(ann) == 0 {
		unstructured.RemoveNestedField(c.Object, "metadata", "annotations")
	} else {
		c.SetAnnotations(ann)
	}
	applied, err := json.Marshal(c.Object)
	if err != nil {
		return nil, fmt.Errorf("encode configuration: %w", err)
	}
	if ann == nil {
		ann = map[string]string{}
	}
	ann[LastAppliedAnnotation] = string(applied) + "\n"
	c.SetAnnotations(ann)
	return json.Marshal(c.Object)
}

// LastApplied reads the last-applied configuration of the live object.
func LastApplied(current *unstructured.Unstructured) []byte {
	if s, ok := current.GetAnnotations()[LastAppliedAnnotation]; ok {
		return []byte(s)
	}
	return nil
}

// ThreeWayPatch computes the patch that takes current to modified while
// deleting what original (the last applied configuration) had and
// modified dropped: a strategic merge patch for kinds with a Go type, a
// JSON merge patch otherwise. An empty patch is "{}".
func ThreeWayPatch(gvk schema.GroupVersionKind, original, modified, current []byte) ([]byte, types.PatchType, error) {
	if obj, err := scheme.Scheme.New(gvk); err == nil {
		meta, err := strategicpatch.NewPatchMetaFromStruct(obj)
		if err != nil {
			return nil, "", fmt.Errorf("patch metadata of %s: %w", gvk.Kind, err)
		}
		p, err := strategicpatch.CreateThreeWayMergePatch(original, modified, current, meta, true)
		if err != nil {
			return nil, "", fmt.Errorf("create patch for %s: %w", gvk.Kind, err)
		}
		return p, types.StrategicMergePatchType, nil
	}
	preconditions := []mergepatch.PreconditionFunc{
		mergepatch.RequireKeyUnchanged("apiVersion"), mergepatch.RequireKeyUnchanged("kind"),
		mergepatch.RequireMetadataKeyUnchanged("name"),
	}
	p, err := jsonmergepatch.CreateThreeWayJSONMergePatch(original, modified, current, preconditions...)
	if err != nil {
		return nil, "", fmt.Errorf("create patch for %s: %w", gvk.Kind, err)
	}
	return p, types.MergePatchType, nil
}

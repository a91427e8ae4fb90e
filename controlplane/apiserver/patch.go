package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	kjson "sigs.k8s.io/json"

	"weir.dev/weir/controlplane/resources"
)

// applyPatch applies a JSON merge, JSON or strategic merge patch to cur and
// returns the patched object. The result carries cur's resourceVersion
// unless the patch sets one, so the write is a compare-and-swap on what
// the patch was applied to.
func applyPatch(res *resources.Resource, cur runtime.Object, pt types.PatchType, patch []byte, strict bool) (runtime.Object, error) {
	orig, err := json.Marshal(cur)
	if err != nil {
		return nil, err
	}
	var patched []byte
	switch pt {
	case types.MergePatchType:
		patched, err = jsonpatch.MergePatch(orig, patch)
	case types.JSONPatchType:
		var p jsonpatch.Patch
		p, err = jsonpatch.DecodePatch(patch)
		if err == nil {
			patched, err = p.Apply(orig)
		}
	case types.StrategicMergePatchType:
		patched, err = strategicpatch.StrategicMergePatch(orig, patch, res.New())
	case types.ApplyYAMLPatchType, types.ApplyCBORPatchType:
		return nil, unsupportedMedia(string(pt) + " (server-side apply is not supported; use client-side apply)")
	default:
		return nil, unsupportedMedia(string(pt))
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("apply %s: %v", pt, err))
	}
	obj := res.New()
	if strict {
		serr, err := kjson.UnmarshalStrict(patched, obj)
		if err == nil && len(serr) > 0 {
			err = serr[0]
		}
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("strict decoding error: %v", err))
		}
	} else if err := kjson.UnmarshalCaseSensitivePreserveInts(patched, obj); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("decode patched %s: %v", res.Kind, err))
	}
	setTypeMeta(obj, res)
	return obj, nil
}

func unsupportedMedia(what string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType,
		Reason:  metav1.StatusReasonUnsupportedMediaType,
		Message: fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json; got %s", what),
	}}
}

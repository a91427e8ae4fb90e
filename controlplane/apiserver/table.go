package apiserver

import (
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"weir.dev/weir/controlplane/printers"
	"weir.dev/weir/controlplane/resources"
)

// Alternative representations a client may ask for in Accept, as
// kube-apiserver offers them: a meta.k8s.io Table (kubectl get) or
// PartialObjectMetadata (metadata-only clients).
type representation struct {
	as      string // "Table", "PartialObjectMetadata" or "PartialObjectMetadataList"
	version string // meta.k8s.io version: v1 or v1beta1
	include metav1.IncludeObjectPolicy
}

// wantedRepresentation reads the first acceptable alternative from the
// Accept header; false when the client wants the object itself. An
// alternative is acceptable only for get, list and watch; a plain
// media type earlier in the list wins, as in content negotiation.
func wantedRepresentation(r *http.Request, verb string) (representation, bool) {
	if verb != "get" && verb != "list" && verb != "watch" {
		return representation{}, false
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if mt != mediaJSON && mt != "*/*" && mt != mediaYAML && mt != mediaProtobuf {
			continue
		}
		as := params["as"]
		if as == "" {
			return representation{}, false
		}
		if mt != mediaJSON || params["g"] != metav1.GroupName || (params["v"] != "v1" && params["v"] != "v1beta1") {
			continue
		}
		switch as {
		case "Table", "PartialObjectMetadata", "PartialObjectMetadataList":
		default:
			continue
		}
		rep := representation{as: as, version: params["v"], include: metav1.IncludeMetadata}
		if v := r.URL.Query().Get("includeObject"); v != "" {
			rep.include = metav1.IncludeObjectPolicy(v)
		}
		return rep, true
	}
	return representation{}, false
}

// represent turns obj (an object or a list of res) into rep. now is the
// clock the AGE cells read.
func represent(res *resources.Resource, obj runtime.Object, rep representation, now time.Time) (runtime.Object, error) {
	gv := "meta.k8s.io/" + rep.version
	switch rep.as {
	case "PartialObjectMetadata", "PartialObjectMetadataList":
		if meta.IsListType(obj) {
			items, err := meta.ExtractList(obj)
			if err != nil {
				return nil, err
			}
			out := &metav1.PartialObjectMetadataList{TypeMeta: metav1.TypeMeta{APIVersion: gv, Kind: "PartialObjectMetadataList"}}
			if lm, err := meta.ListAccessor(obj); err == nil {
				out.ResourceVersion = lm.GetResourceVersion()
			}
			for _, it := range items {
				pm, err := partialMetadata(res, it, gv)
				if err != nil {
					return nil, err
				}
				out.Items = append(out.Items, *pm)
			}
			return out, nil
		}
		return partialMetadata(res, obj, gv)
	}
	switch rep.include {
	case metav1.IncludeNone, metav1.IncludeMetadata, metav1.IncludeObject:
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("includeObject: Unsupported value: %q: supported values: \"None\", \"Metadata\", \"Object\"", rep.include))
	}
	t, err := printers.TableFor(obj, now)
	if err != nil {
		return nil, err
	}
	t.APIVersion = gv
	for i := range t.Rows {
		item := t.Rows[i].Object.Object
		switch rep.include {
		case metav1.IncludeNone:
			t.Rows[i].Object = runtime.RawExtension{}
		case metav1.IncludeMetadata:
			pm, err := partialMetadata(res, item, gv)
			if err != nil {
				return nil, err
			}
			t.Rows[i].Object = runtime.RawExtension{Object: pm}
		}
	}
	return t, nil
}

func partialMetadata(res *resources.Resource, obj runtime.Object, gv string) (*metav1.PartialObjectMetadata, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	om := metav1.ObjectMeta{
		Name: m.GetName(), GenerateName: m.GetGenerateName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
		ResourceVersion: m.GetResourceVersion(), Generation: m.GetGeneration(),
		CreationTimestamp: m.GetCreationTimestamp(), DeletionTimestamp: m.GetDeletionTimestamp(),
		DeletionGracePeriodSeconds: m.GetDeletionGracePeriodSeconds(), Labels: m.GetLabels(),
		Annotations: m.GetAnnotations(), OwnerReferences: m.GetOwnerReferences(), Finalizers: m.GetFinalizers(),
		ManagedFields: m.GetManagedFields(),
	}
	return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: gv, Kind: "PartialObjectMetadata"}, ObjectMeta: om}, nil
}

// encodeRepresentedFrame is a watch frame whose object is rep of obj; a
// Table carries one row.
func encodeRepresentedFrame(res *resources.Resource, t watch.EventType, obj runtime.Object, rep representation, now time.Time) ([]byte, error) {
	if rep.as == "PartialObjectMetadataList" {
		rep.as = "PartialObjectMetadata"
	}
	out, err := represent(res, obj, rep, now)
	if err != nil {
		return nil, err
	}
	return encodeFrame(t, out)
}

// representedFormat keys a watch event's cached frame by representation.
func representedFormat(t watch.EventType, rep representation) string {
	return "json/" + string(t) + "/" + rep.as + "/" + rep.version + "/" + string(rep.include)
}

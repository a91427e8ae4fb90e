package apiserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"weir.dev/weir/controlplane/conversion"
	"weir.dev/weir/controlplane/resources"
)

const (
	mediaJSON     = "application/json"
	mediaYAML     = "application/yaml"
	mediaProtobuf = "application/vnd.kubernetes.protobuf"
	// maxBody bounds request bodies as etcd bounds values (1.5 MiB) plus room.
	maxBody = 3 << 20
)

// readBody reads a request body within maxBody.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("read request body: %v", err))
	}
	if len(b) > maxBody {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d bytes", maxBody))
	}
	return b, nil
}

// decodeObject turns a JSON, YAML or protobuf request body into an object of
// the request's resource, converting a legacy apiVersion (with a warning)
// and refusing a body whose kind is not the URL's.
func decodeObject(r *http.Request, body []byte, res *resources.Resource, strict bool) (runtime.Object, []string, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var warnings []string
	if ct == mediaProtobuf {
		obj, gvk, err := resources.Codecs.UniversalDeserializer().Decode(body, nil, nil)
		if err != nil {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("decode protobuf body: %v", err))
		}
		if err := checkKind(*gvk, res); err != nil {
			return nil, nil, err
		}
		if gvk.GroupVersion() != res.GroupVersion() {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("protobuf bodies must be %s, not %s", res.APIVersion(), gvk.GroupVersion()))
		}
		return obj, nil, nil
	}
	js, err := toJSON(ct, body)
	if err != nil {
		return nil, nil, err
	}
	up, from, warning, err := conversion.Upgrade(js)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("decode body: %v", err))
	}
	if from.Kind == "" {
		return nil, nil, apierrors.NewBadRequest("Object 'Kind' is missing in the request body")
	}
	if warning != "" {
		warnings = append(warnings, warning)
	}
	cur := from
	if c, ok := conversion.CurrentFor(from); ok {
		cur = c
	}
	if err := checkKind(cur, res); err != nil {
		return nil, nil, err
	}
	if cur.GroupVersion() != res.GroupVersion() {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("no kind %q is registered for version %q", from.Kind, from.GroupVersion()))
	}
	obj := res.New()
	if strict {
		serr, err := kjson.UnmarshalStrict(up, obj)
		if err != nil {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("decode %s: %v", res.Kind, err))
		}
		if len(serr) > 0 {
			msgs := make([]string, len(serr))
			for i, e := range serr {
				msgs[i] = e.Error()
			}
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("strict decoding error: %s", strings.Join(msgs, ", ")))
		}
	} else if err := kjson.UnmarshalCaseSensitivePreserveInts(up, obj); err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("decode %s: %v", res.Kind, err))
	}
	setTypeMeta(obj, res)
	return obj, warnings, nil
}

// toJSON accepts JSON or YAML (one document) and returns JSON.
func toJSON(contentType string, body []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, apierrors.NewBadRequest("the request body is empty")
	}
	if contentType == mediaYAML || contentType == "application/x-yaml" || contentType == "text/yaml" || trimmed[0] != '{' {
		js, err := yaml.YAMLToJSON(body)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the body is neither valid JSON nor YAML: %v", err))
		}
		if !bytes.HasPrefix(bytes.TrimSpace(js), []byte("{")) {
			return nil, apierrors.NewBadRequest("the body must be one object")
		}
		return js, nil
	}
	if !json.Valid(trimmed) {
		var v any
		err := json.Unmarshal(trimmed, &v)
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the body is not valid JSON: %v", err))
	}
	return trimmed, nil
}

func checkKind(gvk schema.GroupVersionKind, res *resources.Resource) error {
	if gvk.Kind != res.Kind || gvk.Group != res.Group {
		return apierrors.NewBadRequest(fmt.Sprintf("the body is a %s (%s) but the URL names %s (%s)",
			gvk.Kind, gvk.GroupVersion(), res.Kind, res.APIVersion()))
	}
	return nil
}

func setTypeMeta(obj runtime.Object, res *resources.Resource) {
	obj.GetObjectKind().SetGroupVersionKind(res.GVK())
}

// encodeStored is the value kept in etcd: JSON without a resourceVersion,
// which is the key's ModRevision instead.
func encodeStored(obj runtime.Object, res *resources.Resource) ([]byte, error) {
	setTypeMeta(obj, res)
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	rv := m.GetResourceVersion()
	m.SetResourceVersion("")
	defer m.SetResourceVersion(rv)
	return json.Marshal(obj)
}

// decodeStored reads a stored value and sets its resourceVersion.
func decodeStored(res *resources.Resource, value []byte, rev int64) (runtime.Object, error) {
	obj := res.New()
	if err := json.Unmarshal(value, obj); err != nil {
		return nil, fmt.Errorf("decode stored %s: %w", res.Kind, err)
	}
	setTypeMeta(obj, res)
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	m.SetResourceVersion(strconv.FormatInt(rev, 10))
	return obj, nil
}

// wantsYAML reports whether the client prefers YAML over JSON.
func wantsYAML(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part))
		switch mt {
		case mediaYAML:
			return true
		case mediaJSON, mediaProtobuf, "*/*":
			return false
		}
	}
	return false
}

// writeObject answers with obj in JSON, or YAML when asked for.
func writeObject(w http.ResponseWriter, r *http.Request, code int, obj any) int {
	b, err := json.Marshal(obj)
	if err != nil {
		return writeError(w, fmt.Errorf("encode response: %w", err))
	}
	ct := mediaJSON
	if wantsYAML(r) {
		if y, err := yaml.JSONToYAML(b); err == nil {
			b, ct = y, mediaYAML
		}
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(code)
	_, _ = w.Write(b)
	return code
}

// decodeInto reads a body of a fixed type (DeleteOptions, Binding,
// Eviction, Scale) in JSON, YAML or protobuf.
func decodeInto(r *http.Request, body []byte, into runtime.Object) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == mediaProtobuf {
		if _, _, err := resources.Codecs.UniversalDeserializer().Decode(body, nil, into); err != nil {
			return apierrors.NewBadRequest(fmt.Sprintf("decode protobuf %T: %v", into, err))
		}
		return nil
	}
	js, err := toJSON(ct, body)
	if err != nil {
		return err
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, into); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("decode %T: %v", into, err))
	}
	return nil
}

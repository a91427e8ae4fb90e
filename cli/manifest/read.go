package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	kjson "sigs.k8s.io/json"
)

// Doc is one object read from a manifest.
type Doc struct {
	Source string // the file name, or "STDIN"
	Index  int    // 1-based position of the document in its source
	Object *unstructured.Unstructured
}

// Where names the document in messages: "f.yaml" or "f.yaml" (document 2)
// when the source holds several.
func (d Doc) Where() string {
	return fmt.Sprintf("%q (document %d)", d.Source, d.Index)
}

// manifestExt are the file names a directory contributes, as kubectl's.
var manifestExt = map[string]bool{".yaml": true, ".yml": true, ".json": true}

// Read reads every document of paths ("-" is stdin; a directory
// contributes its .yaml, .yml and .json files, recursively if asked). A
// document that does not parse, lacks apiVersion or kind, or has a field
// its kind does not know fails the whole read, so a caller applies
// nothing from a manifest with a bad document.
func Read(paths []string, stdin io.Reader, recursive bool) ([]Doc, error) {
	if len(paths) == 0 {
		return nil, errors.New("must specify one of -f and -k")
	}
	var docs []Doc
	var errs []error
	for _, p := range paths {
		files, err := expand(p, recursive)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			var data []byte
			name := f
			if f == "-" {
				name = "STDIN"
				data, err = io.ReadAll(stdin)
			} else {
				data, err = os.ReadFile(f)
			}
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", name, err)
			}
			d, derrs := Parse(name, data)
			docs = append(docs, d...)
			errs = append(errs, derrs...)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(docs) == 0 {
		return nil, errors.New("no objects passed to apply")
	}
	return docs, nil
}

func expand(p string, recursive bool) ([]string, error) {
	if p == "-" {
		return []string{p}, nil
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("the path %q does not exist", p)
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	var out []string
	err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != p && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		if manifestExt[strings.ToLower(filepath.Ext(path))] {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", p, err)
	}
	sort.Strings(out)
	return out, nil
}

// Parse splits data into documents and checks each. Errors name the
// source and the document.
func Parse(source string, data []byte) ([]Doc, []error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var docs []Doc
	var errs []error
	for i := 1; ; i++ {
		var raw map[string]any
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		where := fmt.Sprintf("%q (document %d)", source, i)
		if err != nil {
			errs = append(errs, fmt.Errorf("error parsing %s: %w", where, err))
			break
		}
		if len(raw) == 0 {
			i--
			continue
		}
		u := &unstructured.Unstructured{Object: raw}
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				errs = append(errs, fmt.Errorf("error parsing %s: %w", where, err))
				continue
			}
			for j := range list.Items {
				item := &list.Items[j]
				if err := Check(item); err != nil {
					errs = append(errs, fmt.Errorf("error validating %s: %w", where, err))
					continue
				}
				docs = append(docs, Doc{Source: source, Index: i, Object: item})
			}
			continue
		}
		if err := Check(u); err != nil {
			errs = append(errs, fmt.Errorf("error validating %s: %w", where, err))
			continue
		}
		docs = append(docs, Doc{Source: source, Index: i, Object: u})
	}
	return docs, errs
}

// Check validates one object: apiVersion, kind and name are set, and, for
// a kind with a Go type, every field is known.
func Check(u *unstructured.Unstructured) error {
	var missing []string
	if u.GetAPIVersion() == "" {
		missing = append(missing, "apiVersion not set")
	}
	if u.GetKind() == "" {
		missing = append(missing, "kind not set")
	}
	if len(missing) > 0 {
		return fmt.Errorf("error validating data: [%s]", strings.Join(missing, ", "))
	}
	if u.GetName() == "" && u.GetGenerateName() == "" {
		return fmt.Errorf("error validating data: metadata.name: Required value: name or generateName is required")
	}
	obj, err := scheme.Scheme.New(u.GroupVersionKind())
	if err != nil {
		return nil // a kind the server may know (a legacy version): it validates
	}
	js, err := u.MarshalJSON()
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(js, obj)
	if err != nil {
		return fmt.Errorf("error validating data: %v", err)
	}
	if len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = e.Error()
		}
		return fmt.Errorf("error validating data: %s", strings.Join(msgs, ", "))
	}
	return nil
}

// GVK is the document's group, version and kind.
func (d Doc) GVK() schema.GroupVersionKind { return d.Object.GroupVersionKind() }

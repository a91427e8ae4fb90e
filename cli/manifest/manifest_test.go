package manifest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

func TestThreeWayPatch(t *testing.T) {
	deploy := schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	cases := []struct {
		name                        string
		gvk                         schema.GroupVersionKind
		original, modified, current string
		want                        string
		wantType                    types.PatchType
	}{
		{
			name:     "unchanged",
			gvk:      deploy,
			original: `{"metadata":{"name":"a"},"spec":{"replicas":2}}`,
			modified: `{"metadata":{"name":"a"},"spec":{"replicas":2}}`,
			current:  `{"metadata":{"name":"a","uid":"u"},"spec":{"replicas":2},"status":{"replicas":2}}`,
			want:     `{}`, wantType: types.StrategicMergePatchType,
		},
		{
			name:     "a field removed from the file is removed, one set elsewhere is kept",
			gvk:      deploy,
			original: `{"metadata":{"name":"a","labels":{"app":"a","tier":"web"}}}`,
			modified: `{"metadata":{"name":"a","labels":{"app":"a"}}}`,
			current:  `{"metadata":{"name":"a","labels":{"app":"a","tier":"web","team":"x"}}}`,
			want:     `{"metadata":{"labels":{"tier":null}}}`, wantType: types.StrategicMergePatchType,
		},
		{
			name:     "containers merge by name",
			gvk:      deploy,
			original: `{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"x:1"}]}}}}`,
			modified: `{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"x:2"}]}}}}`,
			current:  `{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"x:1","imagePullPolicy":"IfNotPresent"}]}}}}`,
			want:     `{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"c"}],"containers":[{"image":"x:2","name":"c"}]}}}}`,
			wantType: types.StrategicMergePatchType,
		},
		{
			name:     "a kind without a Go type gets a JSON merge patch",
			gvk:      schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"},
			original: `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"a":1,"b":2}}`,
			modified: `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"a":1}}`,
			current:  `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"a":1,"b":2}}`,
			want:     `{"spec":{"b":null}}`, wantType: types.MergePatchType,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, pt, err := ThreeWayPatch(tc.gvk, []byte(tc.original), []byte(tc.modified), []byte(tc.current))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" || pt != tc.wantType {
				t.Errorf("patch type %s, want %s; patch (-want +got):\n%s", pt, tc.wantType, diff)
			}
		})
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		names   []string
		wantErr string
	}{
		{name: "multi-document yaml", in: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n", names: []string{"a", "b"}},
		{name: "json", in: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j"}}`, names: []string{"j"}},
		{name: "a List", in: "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: l1}}\n- {apiVersion: v1, kind: Secret, metadata: {name: l2}}\n", names: []string{"l1", "l2"}},
		{name: "unknown field", in: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndatas: {}\n", wantErr: `"f" (document 1): error validating data: unknown field "datas"`},
		{name: "no name", in: "apiVersion: v1\nkind: ConfigMap\n", wantErr: "name or generateName is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs, errs := Parse("f", []byte(tc.in))
			if tc.wantErr != "" {
				if len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.wantErr) {
					t.Fatalf("errors %v, want %q", errs, tc.wantErr)
				}
				return
			}
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			var names []string
			for _, d := range docs {
				names = append(names, d.Object.GetName())
			}
			if diff := cmp.Diff(tc.names, names); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
		})
	}
}

func TestModifiedRecordsItself(t *testing.T) {
	docs, errs := Parse("f", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, annotations: {x: z}}\ndata: {k: v}\n"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	m, err := Modified(docs[0].Object)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"apiVersion":"v1","data":{"k":"v"},"kind":"ConfigMap","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"v1\",\"data\":{\"k\":\"v\"},\"kind\":\"ConfigMap\",\"metadata\":{\"annotations\":{\"x\":\"z\"},\"name\":\"a\"}}\n","x":"z"},"name":"a"}}`
	if diff := cmp.Diff(want, string(m)); diff != "" {
		t.Errorf("modified (-want +got):\n%s", diff)
	}
}

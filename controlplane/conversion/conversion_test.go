package conversion

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"weir.dev/weir/controlplane/defaults"
	"weir.dev/weir/controlplane/validation"
)

// toJSON turns a YAML manifest into the JSON Upgrade takes, as the API
// server's caller does.
func toJSON(t *testing.T, manifest string) []byte {
	t.Helper()
	b, err := yaml.YAMLToJSON([]byte(manifest))
	if err != nil {
		t.Fatalf("YAMLToJSON: %v", err)
	}
	return b
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode upgraded body: %v\n%s", err, b)
	}
	return m
}

const podTemplate = `
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: nginx:1.27
`

func TestUpgrade(t *testing.T) {
	tests := []struct {
		name        string
		manifest    string
		wantFrom    schema.GroupVersionKind
		wantWarning string
		// want is the upgraded object, as JSON decoded into a map.
		want map[string]any
	}{
		{
			name: "extensions/v1beta1 Deployment without selector",
			manifest: `
apiVersion: extensions/v1beta1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  rollbackTo:
    revision: 3
` + podTemplate,
			wantFrom:    schema.GroupVersionKind{Group: "extensions", Version: "v1beta1", Kind: "Deployment"},
			wantWarning: "extensions/v1beta1 Deployment is deprecated in v1.8+, unavailable in v1.16+; use apps/v1 Deployment",
			want: map[string]any{
				"apiVersion": "apps/v1",
				"kind":       "Deployment",
				"metadata":   map[string]any{"name": "web", "labels": map[string]any{"app": "web"}},
				"spec": map[string]any{
					"replicas": 2.0,
					"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
					"template": map[string]any{
						"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
						"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": "nginx:1.27"}}},
					},
				},
			},
		},
		{
			name: "extensions/v1beta1 DaemonSet gets OnDelete and loses templateGeneration",
			manifest: `
apiVersion: extensions/v1beta1
kind: DaemonSet
metadata:
  name: agent
  labels:
    tier: node
spec:
  templateGeneration: 4
` + podTemplate,
			wantFrom:    schema.GroupVersionKind{Group: "extensions", Version: "v1beta1", Kind: "DaemonSet"},
			wantWarning: "extensions/v1beta1 DaemonSet is deprecated in v1.8+, unavailable in v1.16+; use apps/v1 DaemonSet",
			want: map[string]any{
				"apiVersion": "apps/v1",
				"kind":       "DaemonSet",
				"metadata":   map[string]any{"name": "agent", "labels": map[string]any{"tier": "node"}},
				"spec": map[string]any{
					"selector":       map[string]any{"matchLabels": map[string]any{"app": "web"}},
					"updateStrategy": map[string]any{"type": "OnDelete"},
					"template": map[string]any{
						"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
						"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": "nginx:1.27"}}},
					},
				},
			},
		},
		{
			name: "extensions/v1beta1 DaemonSet keeps an explicit strategy",
			manifest: `
apiVersion: extensions/v1beta1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels:
      app: web
  updateStrategy:
    type: RollingUpdate
` + podTemplate,
			wantFrom:    schema.GroupVersionKind{Group: "extensions", Version: "v1beta1", Kind: "DaemonSet"},
			wantWarning: "extensions/v1beta1 DaemonSet is deprecated in v1.8+, unavailable in v1.16+; use apps/v1 DaemonSet",
			want: map[string]any{
				"apiVersion": "apps/v1",
				"kind":       "DaemonSet",
				"metadata":   map[string]any{"name": "agent", "labels": map[string]any{"app": "web"}},
				"spec": map[string]any{
					"selector":       map[string]any{"matchLabels": map[string]any{"app": "web"}},
					"updateStrategy": map[string]any{"type": "RollingUpdate"},
					"template": map[string]any{
						"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
						"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": "nginx:1.27"}}},
					},
				},
			},
		},
		{
			name: "extensions/v1beta1 ReplicaSet",
			manifest: `
apiVersion: extensions/v1beta1
kind: ReplicaSet
metadata:
  name: web
spec:
` + podTemplate,
			wantFrom:    schema.GroupVersionKind{Group: "extensions", Version: "v1beta1", Kind: "ReplicaSet"},
			wantWarning: "extensions/v1beta1 ReplicaSet is deprecated in v1.8+, unavailable in v1.16+; use apps/v1 ReplicaSet",
			want: map[string]any{
				"apiVersion": "apps/v1",
				"kind":       "ReplicaSet",
				"metadata":   map[string]any{"name": "web", "labels": map[string]any{"app": "web"}},
				"spec": map[string]any{
					"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
					"template": map[string]any{
						"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
						"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": "nginx:1.27"}}},
					},
				},
			},
		},
		{
			name: "apps/v1beta1 Deployment keeps its selector",
			manifest: `
apiVersion: apps/v1beta1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchExpressions:
    - {key: app, operator: In, values: [web]}
` + podTemplate,
			wantFrom:    schema.GroupVersionKind{Group: "apps", Version: "v1beta1", Kind: "Deployment"},
			wantWarning: "apps/v1beta1 Deployment is deprecated in v1.8+, unavailable in v1.16+; use apps/v1 Deployment",
			want: map[string]any{
				"apiVersion": "apps/v1",
				"kind":       "Deployment",
				"metadata":   map[string]any{"name": "web", "labels": map[string]any{"app": "web"}},
				"spec": map[string]any{
					"selector": map[string]any{"matchExpressions": []any{map[string]any{"key": "app", "operator": "In", "values": []any{"web"}}}},
					"template": map[string]any{
						"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
						"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": "nginx:1.27"}}},
					},
				},
			},
		},
		{
			name: "apps/v1beta1 StatefulSet gets OnDelete",
			manifest: `
apiVersion: apps/v1beta1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
` + podTemplate,
			wantFrom:    schema.GroupVersionKind{Group: "apps", Version: "v1beta1", Kind: "StatefulSet"},
			wantWarning: "apps/v1beta1 StatefulSet is deprecated in v1.8+, unavailable in v1.16+; use apps/v1 StatefulSet",
			want: map[string]any{
				"apiVersion": "apps/v1",
				"kind":       "StatefulSet",
				"metadata":   map[string]any{"name": "db", "labels": map[string]any{"app": "web"}},
				"spec": map[string]any{
					"serviceName":    "db",
					"selector":       map[string]any{"matchLabels": map[string]any{"app": "web"}},
					"updateStrategy": map[string]any{"type": "OnDelete"},
					"template": map[string]any{
						"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
						"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": "nginx:1.27"}}},
					},
				},
			},
		},
		{
			name:        "apps/v1beta1 ControllerRevision",
			manifest:    "apiVersion: apps/v1beta1\nkind: ControllerRevision\nmetadata: {name: web-1}\nrevision: 1\ndata: {}\n",
			wantFrom:    schema.GroupVersionKind{Group: "apps", Version: "v1beta1", Kind: "ControllerRevision"},
			wantWarning: "apps/v1beta1 ControllerRevision is deprecated in v1.8+, unavailable in v1.16+; use apps/v1 ControllerRevision",
			want: map[string]any{
				"apiVersion": "apps/v1", "kind": "ControllerRevision",
				"metadata": map[string]any{"name": "web-1"}, "revision": 1.0, "data": map[string]any{},
			},
		},
		{
			name: "apps/v1beta2 Deployment: selector filled, labels left alone",
			manifest: `
apiVersion: apps/v1beta2
kind: Deployment
metadata:
  name: web
spec:
` + podTemplate,
			wantFrom:    schema.GroupVersionKind{Group: "apps", Version: "v1beta2", Kind: "Deployment"},
			wantWarning: "apps/v1beta2 Deployment is deprecated in v1.9+, unavailable in v1.16+; use apps/v1 Deployment",
			want: map[string]any{
				"apiVersion": "apps/v1",
				"kind":       "Deployment",
				"metadata":   map[string]any{"name": "web"},
				"spec": map[string]any{
					"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
					"template": map[string]any{
						"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
						"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": "nginx:1.27"}}},
					},
				},
			},
		},
		{
			name: "apps/v1beta2 DaemonSet keeps the RollingUpdate default",
			manifest: `
apiVersion: apps/v1beta2
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels:
      app: web
` + podTemplate,
			wantFrom:    schema.GroupVersionKind{Group: "apps", Version: "v1beta2", Kind: "DaemonSet"},
			wantWarning: "apps/v1beta2 DaemonSet is deprecated in v1.9+, unavailable in v1.16+; use apps/v1 DaemonSet",
			want: map[string]any{
				"apiVersion": "apps/v1",
				"kind":       "DaemonSet",
				"metadata":   map[string]any{"name": "agent"},
				"spec": map[string]any{
					"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
					"template": map[string]any{
						"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
						"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": "nginx:1.27"}}},
					},
				},
			},
		},
		{
			name:        "apps/v1beta2 ReplicaSet",
			manifest:    "apiVersion: apps/v1beta2\nkind: ReplicaSet\nmetadata: {name: web}\nspec:\n" + podTemplate,
			wantFrom:    schema.GroupVersionKind{Group: "apps", Version: "v1beta2", Kind: "ReplicaSet"},
			wantWarning: "apps/v1beta2 ReplicaSet is deprecated in v1.9+, unavailable in v1.16+; use apps/v1 ReplicaSet",
			want: map[string]any{
				"apiVersion": "apps/v1",
				"kind":       "ReplicaSet",
				"metadata":   map[string]any{"name": "web"},
				"spec": map[string]any{
					"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
					"template": map[string]any{
						"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
						"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": "nginx:1.27"}}},
					},
				},
			},
		},
		{
			name:        "apps/v1beta2 StatefulSet",
			manifest:    "apiVersion: apps/v1beta2\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  serviceName: db\n" + podTemplate,
			wantFrom:    schema.GroupVersionKind{Group: "apps", Version: "v1beta2", Kind: "StatefulSet"},
			wantWarning: "apps/v1beta2 StatefulSet is deprecated in v1.9+, unavailable in v1.16+; use apps/v1 StatefulSet",
			want: map[string]any{
				"apiVersion": "apps/v1",
				"kind":       "StatefulSet",
				"metadata":   map[string]any{"name": "db"},
				"spec": map[string]any{
					"serviceName": "db",
					"selector":    map[string]any{"matchLabels": map[string]any{"app": "web"}},
					"template": map[string]any{
						"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
						"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": "nginx:1.27"}}},
					},
				},
			},
		},
		{
			name:        "apps/v1beta2 ControllerRevision",
			manifest:    "apiVersion: apps/v1beta2\nkind: ControllerRevision\nmetadata: {name: web-1}\nrevision: 2\n",
			wantFrom:    schema.GroupVersionKind{Group: "apps", Version: "v1beta2", Kind: "ControllerRevision"},
			wantWarning: "apps/v1beta2 ControllerRevision is deprecated in v1.9+, unavailable in v1.16+; use apps/v1 ControllerRevision",
			want:        map[string]any{"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": map[string]any{"name": "web-1"}, "revision": 2.0},
		},
		{
			name:        "batch/v1beta1 CronJob",
			manifest:    "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: nightly}\nspec:\n  schedule: '@daily'\n",
			wantFrom:    schema.GroupVersionKind{Group: "batch", Version: "v1beta1", Kind: "CronJob"},
			wantWarning: "batch/v1beta1 CronJob is deprecated in v1.21+, unavailable in v1.25+; use batch/v1 CronJob",
			want: map[string]any{
				"apiVersion": "batch/v1", "kind": "CronJob",
				"metadata": map[string]any{"name": "nightly"}, "spec": map[string]any{"schedule": "@daily"},
			},
		},
		{
			name:        "batch/v2alpha1 CronJob",
			manifest:    "apiVersion: batch/v2alpha1\nkind: CronJob\nmetadata: {name: nightly}\nspec:\n  schedule: '0 1 * * *'\n",
			wantFrom:    schema.GroupVersionKind{Group: "batch", Version: "v2alpha1", Kind: "CronJob"},
			wantWarning: "batch/v2alpha1 CronJob is deprecated in v1.8+, unavailable in v1.21+; use batch/v1 CronJob",
			want: map[string]any{
				"apiVersion": "batch/v1", "kind": "CronJob",
				"metadata": map[string]any{"name": "nightly"}, "spec": map[string]any{"schedule": "0 1 * * *"},
			},
		},
	}
	if len(tests) == 0 {
		t.Fatal("empty test table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, from, warning, err := Upgrade(toJSON(t, tc.manifest))
			if err != nil {
				t.Fatalf("Upgrade() error = %v", err)
			}
			if from != tc.wantFrom {
				t.Errorf("from = %v, want %v", from, tc.wantFrom)
			}
			if warning != tc.wantWarning {
				t.Errorf("warning = %q, want %q", warning, tc.wantWarning)
			}
			if diff := cmp.Diff(tc.want, decode(t, out)); diff != "" {
				t.Errorf("upgraded object (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpgradePassesThrough(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantFrom schema.GroupVersionKind
	}{
		{"current Deployment", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"}}`, schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}},
		{"core Pod", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}`, schema.GroupVersionKind{Version: "v1", Kind: "Pod"}},
		{"legacy group, unconverted kind", `{"apiVersion":"extensions/v1beta1","kind":"Ingress"}`, schema.GroupVersionKind{Group: "extensions", Version: "v1beta1", Kind: "Ingress"}},
		{"unknown group", `{"apiVersion":"example.com/v1","kind":"Widget","spec":{"size":1e400}}`, schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}},
		{"no apiVersion or kind", `{"metadata":{"name":"x"}}`, schema.GroupVersionKind{}},
		{"unparseable apiVersion", `{"apiVersion":"a/b/c","kind":"Thing"}`, schema.GroupVersionKind{Kind: "Thing"}},
	}
	if len(tests) == 0 {
		t.Fatal("empty test table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, from, warning, err := Upgrade([]byte(tc.body))
			if err != nil {
				t.Fatalf("Upgrade() error = %v", err)
			}
			if string(out) != tc.body {
				t.Errorf("body changed:\n got %s\nwant %s", out, tc.body)
			}
			if from != tc.wantFrom {
				t.Errorf("from = %v, want %v", from, tc.wantFrom)
			}
			if warning != "" {
				t.Errorf("warning = %q, want none", warning)
			}
		})
	}
}

func TestUpgradeErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr error
	}{
		{name: "malformed", body: `{"apiVersion":`},
		{name: "empty", body: ``},
		{name: "trailing data", body: `{"kind":"Pod"} {"kind":"Pod"}`},
		{name: "array", body: `[{"kind":"Pod"}]`, wantErr: ErrNotObject},
		{name: "null", body: `null`, wantErr: ErrNotObject},
		{name: "kind not a string", body: `{"apiVersion":"apps/v1beta1","kind":7}`},
	}
	if len(tests) == 0 {
		t.Fatal("empty test table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := Upgrade([]byte(tc.body))
			if err == nil {
				t.Fatal("Upgrade() error = nil, want an error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Upgrade() error = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestUpgradedObjectsAreValid runs upgraded manifests through the rest of
// the create path: they must decode strictly into the current type and pass
// defaulting and validation.
func TestUpgradedObjectsAreValid(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		into     runtime.Object
	}{
		{"extensions Deployment", "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: web, namespace: default}\nspec:\n  rollbackTo: {revision: 1}\n" + podTemplate, &appsv1.Deployment{}},
		{"extensions DaemonSet", "apiVersion: extensions/v1beta1\nkind: DaemonSet\nmetadata: {name: agent, namespace: default}\nspec:\n  templateGeneration: 2\n" + podTemplate, &appsv1.DaemonSet{}},
		{"apps/v1beta1 StatefulSet", "apiVersion: apps/v1beta1\nkind: StatefulSet\nmetadata: {name: db, namespace: default}\nspec:\n  serviceName: db\n" + podTemplate, &appsv1.StatefulSet{}},
		{"batch/v1beta1 CronJob", `
apiVersion: batch/v1beta1
kind: CronJob
metadata: {name: nightly, namespace: default}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - {name: task, image: busybox:1.36}
`, &batchv1.CronJob{}},
	}
	if len(tests) == 0 {
		t.Fatal("empty test table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, _, err := Upgrade(toJSON(t, tc.manifest))
			if err != nil {
				t.Fatalf("Upgrade() error = %v", err)
			}
			obj := tc.into.DeepCopyObject()
			if err := yaml.UnmarshalStrict(out, obj); err != nil {
				t.Fatalf("strict decode: %v\n%s", err, out)
			}
			defaults.Default(obj)
			if errs := validation.Validate(obj, nil); len(errs) != 0 {
				t.Errorf("Validate() = %v", errs.ToAggregate())
			}
		})
	}
}

func TestCurrentFor(t *testing.T) {
	tests := []struct {
		in     schema.GroupVersionKind
		want   schema.GroupVersionKind
		wantOK bool
	}{
		{schema.GroupVersionKind{Group: "extensions", Version: "v1beta1", Kind: "Deployment"}, schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, true},
		{schema.GroupVersionKind{Group: "extensions", Version: "v1beta1", Kind: "DaemonSet"}, schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}, true},
		{schema.GroupVersionKind{Group: "extensions", Version: "v1beta1", Kind: "ReplicaSet"}, schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}, true},
		{schema.GroupVersionKind{Group: "apps", Version: "v1beta1", Kind: "StatefulSet"}, schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, true},
		{schema.GroupVersionKind{Group: "apps", Version: "v1beta2", Kind: "ControllerRevision"}, schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ControllerRevision"}, true},
		{schema.GroupVersionKind{Group: "batch", Version: "v1beta1", Kind: "CronJob"}, schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}, true},
		{schema.GroupVersionKind{Group: "batch", Version: "v2alpha1", Kind: "CronJob"}, schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}, true},
		{schema.GroupVersionKind{Group: "extensions", Version: "v1beta1", Kind: "Ingress"}, schema.GroupVersionKind{Group: "extensions", Version: "v1beta1", Kind: "Ingress"}, false},
		{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, false},
		{schema.GroupVersionKind{Group: "batch", Version: "v1beta1", Kind: "Job"}, schema.GroupVersionKind{Group: "batch", Version: "v1beta1", Kind: "Job"}, false},
	}
	if len(tests) == 0 {
		t.Fatal("empty test table")
	}
	for _, tc := range tests {
		t.Run(tc.in.String(), func(t *testing.T) {
			got, ok := CurrentFor(tc.in)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("CurrentFor(%v) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestIsLegacy(t *testing.T) {
	tests := []struct {
		gv   schema.GroupVersion
		want bool
	}{
		{schema.GroupVersion{Group: "extensions", Version: "v1beta1"}, true},
		{schema.GroupVersion{Group: "apps", Version: "v1beta1"}, true},
		{schema.GroupVersion{Group: "apps", Version: "v1beta2"}, true},
		{schema.GroupVersion{Group: "batch", Version: "v1beta1"}, true},
		{schema.GroupVersion{Group: "batch", Version: "v2alpha1"}, true},
		{schema.GroupVersion{Group: "apps", Version: "v1"}, false},
		{schema.GroupVersion{Group: "batch", Version: "v1"}, false},
		{schema.GroupVersion{Version: "v1"}, false},
		{schema.GroupVersion{Group: "autoscaling", Version: "v2"}, false},
	}
	if len(tests) == 0 {
		t.Fatal("empty test table")
	}
	for _, tc := range tests {
		t.Run(tc.gv.String(), func(t *testing.T) {
			if got := IsLegacy(tc.gv); got != tc.want {
				t.Errorf("IsLegacy(%v) = %v, want %v", tc.gv, got, tc.want)
			}
		})
	}
}

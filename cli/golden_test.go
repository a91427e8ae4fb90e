package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"weir.dev/weir/cli/describe"
	"weir.dev/weir/controlplane/printers"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenNow is the clock every AGE in the goldens is read against.
var goldenNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func loadList(t *testing.T, name string) []runtime.Object {
	t.Helper()
	y, err := os.ReadFile(filepath.Join("testdata", "objects", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatal(err)
	}
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(js, nil, nil)
	if err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	items, err := meta.ExtractList(obj)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) == 0 {
		t.Fatalf("fixture %s has no objects", name)
	}
	return items
}

func golden(t *testing.T, file, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", file)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

// tableText renders objs as the server's Table and weir get's layout.
func tableText(t *testing.T, list runtime.Object, opts printers.PrintOptions) string {
	t.Helper()
	tb, err := printers.TableFor(list, goldenNow)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := printers.NewPrinter(opts).PrintTable(&buf, tb); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// related gathers, from every fixture, what describe shows beside obj.
func related(obj runtime.Object, all map[string][]runtime.Object) describe.Related {
	var rel describe.Related
	m, _ := meta.Accessor(obj)
	for _, o := range all["events"] {
		e := o.(*corev1.Event)
		if e.InvolvedObject.Name == m.GetName() && e.InvolvedObject.UID == m.GetUID() {
			rel.Events = append(rel.Events, *e)
		}
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		var rss []*appsv1.ReplicaSet
		for _, r := range all["replicasets"] {
			rs := r.(*appsv1.ReplicaSet)
			if ref := metav1.GetControllerOf(rs); ref != nil && ref.UID == o.UID {
				rss = append(rss, rs)
			}
		}
		rel.NewReplicaSet, rel.OldReplicaSets = splitReplicaSets(o, rss)
	case *appsv1.ReplicaSet, *corev1.Node:
		for _, p := range all["pods"] {
			pod := p.(*corev1.Pod)
			if n, ok := obj.(*corev1.Node); ok && pod.Spec.NodeName != n.Name {
				continue
			}
			rel.Pods = append(rel.Pods, *pod)
		}
	case *corev1.Service:
		for _, s := range all["endpointslices"] {
			sl := s.(*discoveryv1.EndpointSlice)
			if sl.Labels["kubernetes.io/service-name"] == o.Name {
				rel.EndpointSlices = append(rel.EndpointSlices, *sl)
			}
		}
	}
	return rel
}

// TestGolden checks get, get -o wide and describe for every kind against
// testdata/golden (go test -update rewrites them).
func TestGolden(t *testing.T) {
	kinds := []string{"pods", "deployments", "replicasets", "services", "nodes", "namespaces", "configmaps",
		"daemonsets", "statefulsets", "jobs", "cronjobs", "events", "endpointslices", "secrets"}
	all := map[string][]runtime.Object{}
	for _, k := range kinds {
		all[k] = loadList(t, k)
	}
	for _, k := range kinds {
		t.Run(k, func(t *testing.T) {
			items := all[k]
			list := listOf(t, items)
			golden(t, k+".get", tableText(t, list, printers.PrintOptions{}))
			golden(t, k+".wide", tableText(t, list, printers.PrintOptions{Wide: true}))
			golden(t, k+".all-namespaces-labels", tableText(t, list, printers.PrintOptions{WithNamespace: true, ShowLabels: true, LabelColumns: []string{"app"}}))
			var descs []string
			for _, it := range items {
				d, err := describe.Describe(it, related(it, all), goldenNow)
				if err != nil {
					t.Fatal(err)
				}
				descs = append(descs, d)
			}
			golden(t, k+".describe", strings.Join(descs, "\n"))
		})
	}
}

func listOf(t *testing.T, items []runtime.Object) runtime.Object {
	t.Helper()
	gvk, _, err := scheme.Scheme.ObjectKinds(items[0])
	if err != nil {
		t.Fatal(err)
	}
	list, err := scheme.Scheme.New(gvk[0].GroupVersion().WithKind(gvk[0].Kind + "List"))
	if err != nil {
		t.Fatal(err)
	}
	if err := meta.SetList(list, items); err != nil {
		t.Fatal(err)
	}
	return list
}

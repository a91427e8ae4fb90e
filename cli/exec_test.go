package cli

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDefaultContainer(t *testing.T) {
	pod := func(ann string, inits []string, names ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
		if ann != "" {
			p.Annotations = map[string]string{DefaultContainerAnnotation: ann}
		}
		for _, n := range inits {
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: n})
		}
		for _, n := range names {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: n})
		}
		return p
	}
	for _, tc := range []struct {
		name          string
		pod           *corev1.Pod
		want, wantErr string
	}{
		{name: "only one", pod: pod("", []string{"init"}, "a"), want: "a"},
		{name: "annotation", pod: pod("b", nil, "a", "b"), want: "b"},
		{name: "annotation names an init container", pod: pod("init", []string{"init"}, "a", "b"), want: "init"},
		{name: "annotation names nothing", pod: pod("z", nil, "a", "b"), wantErr: "a container name must be specified for pod p, choose one of: [a b]"},
		{name: "ambiguous with init containers", pod: pod("", []string{"init"}, "a", "b"),
			wantErr: "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [init]"},
		{name: "none", pod: pod("", nil), wantErr: "pod p does not have any containers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DefaultContainer(tc.pod)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

package runtime

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
)

func TestProcessArgs(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"default"}, Env: []string{"PATH=/bin", "X=img"}}
	env := []EnvVar{{"X", "ctr"}, {"MSG", "hi there"}}
	tests := []struct {
		name string
		c    corev1.Container
		want []string
	}{
		{"image defaults", corev1.Container{}, []string{"/entry", "default"}},
		{"args replace cmd", corev1.Container{Args: []string{"a", "$(MSG)"}}, []string{"/entry", "a", "hi there"}},
		{"command replaces entrypoint and cmd", corev1.Container{Command: []string{"sh", "-c"}}, []string{"sh", "-c"}},
		{"command and args", corev1.Container{Command: []string{"echo"}, Args: []string{"$(X)", "$$(X)", "$(NOPE)"}}, []string{"echo", "ctr", "$(X)", "$(NOPE)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, processArgs(img, &tc.c, env)); d != "" {
				t.Errorf("argv (-want +got):\n%s", d)
			}
		})
	}
	if d := cmp.Diff([]string{"PATH=/bin", "X=ctr", "MSG=hi there"}, processEnv(img, env)); d != "" {
		t.Errorf("env (-want +got):\n%s", d)
	}
	if got := workingDir(img, &corev1.Container{}); got != "/" {
		t.Errorf("cwd %q", got)
	}
}

func TestCgroupResources(t *testing.T) {
	u64 := func(v uint64) *uint64 { return &v }
	i64 := func(v int64) *int64 { return &v }
	rl := func(kv ...string) corev1.ResourceList {
		l := corev1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return l
	}
	tests := []struct {
		name string
		r    corev1.ResourceRequirements
		want specs.LinuxResources
	}{
		{"best effort", corev1.ResourceRequirements{}, specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(2)}}},
		{"limits only: request defaults to limit", corev1.ResourceRequirements{Limits: rl("cpu", "250m", "memory", "64Mi")},
			specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(256), Quota: i64(25000), Period: u64(100000)}, Memory: &specs.LinuxMemory{Limit: i64(64 << 20)}}},
		{"request and limit", corev1.ResourceRequirements{Requests: rl("cpu", "100m"), Limits: rl("cpu", "2")},
			specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(102), Quota: i64(200000), Period: u64(100000)}}},
		{"tiny limit floors at 1 ms", corev1.ResourceRequirements{Limits: rl("cpu", "1m")},
			specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(2), Quota: i64(1000), Period: u64(100000)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(&tc.want, cgroupResources(tc.r)); d != "" {
				t.Errorf("resources (-want +got):\n%s", d)
			}
		})
	}
}

func TestContainerMounts(t *testing.T) {
	vols := map[string]volume{"data": {hostPath: "/pods/u/volumes/empty-dir/data"}, "cfg": {hostPath: "/pods/u/cfg", readOnly: true}}
	pf := podFiles{hosts: "/pods/u/etc/hosts", resolv: "/pods/u/etc/resolv.conf", hostname: "/pods/u/etc/hostname"}
	c := &corev1.Container{VolumeMounts: []corev1.VolumeMount{
		{Name: "data", MountPath: "/data"},
		{Name: "data", MountPath: "/sub", SubPath: "a/b", ReadOnly: true},
		{Name: "cfg", MountPath: "/etc/resolv.conf", SubPath: "resolv"},
	}}
	got, err := containerMounts(c, vols, pf, "/pods/u/termination/c-0")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, m := range got {
		lines = append(lines, m.Source+" "+m.Destination+" "+m.Options[2])
	}
	want := []string{
		"/pods/u/volumes/empty-dir/data /data rw",
		"/pods/u/volumes/empty-dir/data/a/b /sub ro",
		"/pods/u/cfg/resolv /etc/resolv.conf ro",
		"/pods/u/etc/hosts /etc/hosts rw",
		"/pods/u/etc/hostname /etc/hostname rw",
		"/pods/u/termination/c-0 /dev/termination-log rw",
	}
	if d := cmp.Diff(want, lines); d != "" {
		t.Errorf("mounts (-want +got):\n%s", d)
	}
	for _, bad := range []corev1.VolumeMount{{Name: "nope", MountPath: "/x"}, {Name: "data", MountPath: "/x", SubPath: "../etc"}, {Name: "data", MountPath: "/x", SubPath: "/abs"}} {
		if _, err := containerMounts(&corev1.Container{VolumeMounts: []corev1.VolumeMount{bad}}, vols, pf, ""); !isConfigError(err) {
			t.Errorf("mount %+v: got %v, want a config error", bad, err)
		}
	}
}

func TestContainerID(t *testing.T) {
	uid := types.UID("0d4c2d43-7a43-4f51-9a4b-1f1c6d2d8e11")
	tests := []struct{ name, want string }{
		{"web", "0d4c2d43-7a43-4f51-9a4b-1f1c6d2d8e11_web_3"},
		{"a--b", ""},
		{strings.Repeat("x", 63), ""},
	}
	for _, tc := range tests {
		id := ContainerID(uid, tc.name, 3)
		if tc.want != "" && id != tc.want {
			t.Errorf("ContainerID(%q) = %q, want %q", tc.name, id, tc.want)
		}
		if len(id) > 76 || !regexpIdent.MatchString(id) {
			t.Errorf("ContainerID(%q) = %q: not a containerd identifier", tc.name, id)
		}
		if got, ok := PodUIDFromContainerID(id); !ok || got != uid {
			t.Errorf("PodUIDFromContainerID(%q) = %q", id, got)
		}
	}
	if ContainerID(uid, "a--b", 0) == ContainerID(uid, "a-b", 0) {
		t.Error("a--b and a-b share an id")
	}
}

// regexpIdent is containerd's identifier rule.
var regexpIdent = regexp.MustCompile(`^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$`)

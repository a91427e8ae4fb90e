package runtime

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCgroupMounts(t *testing.T) {
	mi := `25 18 0:22 / /sys/fs/cgroup rw,relatime shared:9 - tmpfs tmpfs rw,mode=755
26 25 0:23 / /sys/fs/cgroup/cpu rw,relatime shared:10 - cgroup cgroup rw,cpu
27 25 0:24 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
28 25 0:25 / /sys/fs/cgroup/systemd rw,relatime shared:12 - cgroup cgroup rw,xattr,name=systemd
29 25 0:26 / /sys/fs/cgroup/unified rw,relatime shared:13 - cgroup2 cgroup2 rw
`
	got := parseCgroupMounts([]byte(mi))
	want := []cgroupMount{
		{path: "/sys/fs/cgroup/cpu", controllers: []string{"cpu"}},
		{path: "/sys/fs/cgroup/memory", controllers: []string{"memory"}},
		{path: "/sys/fs/cgroup/systemd", controllers: []string{"name=systemd"}},
		{path: "/sys/fs/cgroup/unified", v2: true},
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(cgroupMount{})); d != "" {
		t.Errorf("mounts (-want +got):\n%s", d)
	}
}

package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// cgroupMount is one mounted cgroup hierarchy.
type cgroupMount struct {
	path        string
	v2          bool
	controllers []string // v1: from the super options (cpu, memory, name=systemd, …)
}

// parseCgroupMounts reads /proc/self/mountinfo for cgroup and cgroup2
// mounts.
func parseCgroupMounts(mountinfo []byte) []cgroupMount {
	var out []cgroupMount
	for _, line := range strings.Split(string(mountinfo), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		switch qf[0] {
		case "cgroup2":
			out = append(out, cgroupMount{path: pf[4], v2: true})
		case "cgroup":
			var ctrls []string
			for _, o := range strings.Split(qf[2], ",") {
				switch o {
				case "rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec", "clone_children", "xattr":
				default:
					if !strings.HasPrefix(o, "release_agent=") {
						ctrls = append(ctrls, o)
					}
				}
			}
			out = append(out, cgroupMount{path: pf[4], controllers: ctrls})
		}
	}
	return out
}

func cgroupMounts() ([]cgroupMount, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return parseCgroupMounts(b), nil
}

// RemoveCgroup removes the cgroup at path (relative to every hierarchy's
// root, e.g. /weir/node1/pod<uid>) and the empty cgroups below it, in
// every mounted hierarchy. A cgroup that still holds processes fails with
// EBUSY; a missing one is not an error. `weir down` and tests use it for
// the node's parent /weir/<node>.
func RemoveCgroup(path string) error {
	if path == "" || path == "/" || !filepath.IsAbs(path) {
		return fmt.Errorf("remove cgroup %q: want an absolute path below the root", path)
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		if err := rmdirTree(filepath.Join(m.path, path)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// rmdirTree removes dir's subdirectories deepest first, then dir. Only
// directories: a cgroup's files disappear with it.
func rmdirTree(dir string) error {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := rmdirTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	return nil
}

// oomKills reads how many processes of the cgroup at path the OOM killer
// killed (v1 memory.oom_control, or v2 memory.events).
func oomKills(path string) int {
	mounts, err := cgroupMounts()
	if err != nil {
		return 0
	}
	for _, m := range mounts {
		var file string
		switch {
		case !m.v2 && contains(m.controllers, "memory"):
			file = filepath.Join(m.path, path, "memory.oom_control")
		case m.v2:
			file = filepath.Join(m.path, path, "memory.events")
		default:
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
				if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
					return n
				}
			}
		}
	}
	return 0
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

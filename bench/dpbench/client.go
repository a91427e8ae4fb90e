package dpbench

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"

	vnetns "github.com/vishvananda/netns"
)

// clientRun runs f on a thread inside the client namespace. When a cgroup
// is given, the thread itself joins it first (cgroup v2 "threaded" writes
// are not allowed in domain cgroups, so the whole benchmark process joins
// and leaves again around f).
func clientRun(ns, cgroup string, f func() error) error {
	if cgroup != "" {
		orig, err := ownCgroup()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(cgroup, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return fmt.Errorf("join cgroup %s: %w", cgroup, err)
		}
		defer os.WriteFile(filepath.Join(orig, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := vnetns.GetFromName(ns)
		if err == nil {
			err = vnetns.Set(h)
			h.Close()
		}
		if err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

// ownCgroup is this process's cgroup v2 directory.
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range splitLines(string(b)) {
		if len(line) > 3 && line[:3] == "0::" {
			return filepath.Join("/sys/fs/cgroup/unified", line[3:]), nil
		}
	}
	return "", syscall.ENOENT
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := range len(s) {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

package simnode

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CgroupRoot is the cgroup v2 mount on this machine kind.
const CgroupRoot = "/sys/fs/cgroup/unified"

// JoinCgroup moves this whole process into the cgroup v2 directory dir
// (a process "on the node", where socket load balancing acts) and returns
// a function that moves it back. cgroup v2 domain cgroups take whole
// processes, not threads, so callers keep what they do in between short.
func JoinCgroup(dir string) (restore func(), err error) {
	orig, err := ownCgroup()
	if err != nil {
		return nil, err
	}
	pid := []byte(strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), pid, 0o644); err != nil {
		return nil, fmt.Errorf("join cgroup %s: %w", dir, err)
	}
	return func() { _ = os.WriteFile(filepath.Join(orig, "cgroup.procs"), pid, 0o644) }, nil
}

func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return filepath.Join(CgroupRoot, rest), nil
		}
	}
	return "", fmt.Errorf("no cgroup v2 entry in /proc/self/cgroup")
}

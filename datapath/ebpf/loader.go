package ebpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// sockLinks are the socket-LB attach points and their pin names under
// <pin dir>/links/.
var sockLinks = []struct {
	pin    string
	attach ebpf.AttachType
	prog   func(*socklbPrograms) *ebpf.Program
}{
	{"sock_connect4", ebpf.AttachCGroupInet4Connect, func(p *socklbPrograms) *ebpf.Program { return p.WeirConnect4 }},
	{"sock_sendmsg4", ebpf.AttachCGroupUDP4Sendmsg, func(p *socklbPrograms) *ebpf.Program { return p.WeirSendmsg4 }},
	{"sock_recvmsg4", ebpf.AttachCGroupUDP4Recvmsg, func(p *socklbPrograms) *ebpf.Program { return p.WeirRecvmsg4 }},
	{"sock_getpeername4", ebpf.AttachCgroupInet4GetPeername, func(p *socklbPrograms) *ebpf.Program { return p.WeirGetpeername4 }},
}

// mountBPFFS mounts bpffs at dir unless it is there. A lock on the
// directory keeps two processes starting together from stacking mounts,
// which would hide the first one's pins.
func mountBPFFS(dir string) error {
	if ok, err := isFS(dir, unix.BPF_FS_MAGIC); err == nil && ok {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mount bpffs: %w", err)
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("mount bpffs: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("mount bpffs: lock %s: %w", dir, err)
	}
	if ok, err := isFS(dir, unix.BPF_FS_MAGIC); err != nil || ok {
		return err
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpffs at %s: %w", dir, err)
	}
	return nil
}

func isFS(path string, magic int64) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, fmt.Errorf("statfs %s: %w", path, err)
	}
	return int64(st.Type) == magic, nil
}

// cgroupID checks that path is a cgroup v2 directory other than a
// hierarchy's root and returns its id (its inode number).
func cgroupID(path string) (uint64, error) {
	ok, err := isFS(path, unix.CGROUP2_SUPER_MAGIC)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("%s is not a cgroup v2 directory", path)
	}
	var st, parent unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	if err := unix.Stat(filepath.Join(path, ".."), &parent); err != nil {
		return 0, fmt.Errorf("stat %s/..: %w", path, err)
	}
	if st.Dev != parent.Dev || st.Ino == parent.Ino {
		return 0, fmt.Errorf("%s is the root of a cgroup v2 hierarchy: socket LB there would capture every process on the machine", path)
	}
	return st.Ino, nil
}

// hostNetnsCookie is the cookie of the calling thread's network namespace.
func hostNetnsCookie() (uint64, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("netns cookie: %w", err)
	}
	defer unix.Close(fd)
	c, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	if err != nil {
		return 0, fmt.Errorf("netns cookie: %w", err)
	}
	return c, nil
}

// loadObjects loads the socket-LB programs against the node's pinned maps,
// creating and pinning the maps that are not there yet.
func loadObjects(cfg Config, pinDir string) (*socklbObjects, error) {
	spec, err := loadSocklb()
	if err != nil {
		return nil, err
	}
	for name, size := range map[string]int{
		mapFrontends: cfg.Sizes.Frontends,
		mapServices:  cfg.Sizes.Services,
		mapSvcStats:  cfg.Sizes.Services,
		mapSlots:     cfg.Sizes.Slots,
		mapRevNAT:    cfg.Sizes.RevNAT,
		mapAffinity:  cfg.Sizes.Affinity,
	} {
		spec.Maps[name].MaxEntries = uint32(size)
	}
	var cookie uint64
	if cfg.LoopbackNodePorts {
		if cookie, err = hostNetnsCookie(); err != nil {
			return nil, err
		}
	}
	if err := spec.Variables[socklbVarHostNetnsCookie].Set(cookie); err != nil {
		return nil, fmt.Errorf("set host_netns_cookie: %w", err)
	}
	objs := &socklbObjects{}
	err = spec.LoadAndAssign(objs, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: pinDir}})
	if errors.Is(err, ebpf.ErrMapIncompatible) {
		return nil, fmt.Errorf("load socket LB: a map pinned in %s differs from this build or configuration (remove the node's pins to resize or upgrade it): %w", pinDir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("load socket LB: %w", err)
	}
	return objs, nil
}

// attachLinks attaches each program to the cgroup, or, when a link is
// pinned there from an earlier run, swaps the program inside it
// atomically: no connect() ever passes unbalanced during a restart.
func attachLinks(progs *socklbPrograms, cgroupPath string, cgID uint64, linkDir string) ([]link.Link, error) {
	if err := os.MkdirAll(linkDir, 0o700); err != nil {
		return nil, fmt.Errorf("attach socket LB: %w", err)
	}
	var links []link.Link
	fail := func(err error) ([]link.Link, error) {
		for _, l := range links {
			l.Close()
		}
		return nil, err
	}
	for _, sl := range sockLinks {
		path := filepath.Join(linkDir, sl.pin)
		prog := sl.prog(progs)
		l, err := reusePinnedLink(path, cgID, sl.attach)
		if err != nil {
			return fail(err)
		}
		if l != nil {
			if err := l.Update(prog); err != nil {
				l.Close()
				return fail(fmt.Errorf("update pinned link %s: %w", path, err))
			}
			links = append(links, l)
			continue
		}
		l, err = link.AttachCgroup(link.CgroupOptions{Path: cgroupPath, Attach: sl.attach, Program: prog})
		if err != nil {
			return fail(fmt.Errorf("attach %s to %s: %w", sl.pin, cgroupPath, err))
		}
		if err := l.Pin(path); err != nil {
			l.Close()
			return fail(fmt.Errorf("pin link %s: %w", path, err))
		}
		links = append(links, l)
	}
	return links, nil
}

// reusePinnedLink opens the link pinned at path if it attaches the
// expected hook to the expected cgroup. A link pinned for another cgroup
// is detached and nil returned; no pin at all returns nil too.
func reusePinnedLink(path string, cgID uint64, attach ebpf.AttachType) (link.Link, error) {
	l, err := link.LoadPinnedLink(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open pinned link %s: %w", path, err)
	}
	info, err := l.Info()
	if err == nil {
		if cg := info.Cgroup(); cg != nil && cg.CgroupId == cgID && ebpf.AttachType(cg.AttachType) == attach {
			return l, nil
		}
	}
	// Configured for another cgroup now: let the old attachment go.
	if err := l.Unpin(); err != nil {
		l.Close()
		return nil, fmt.Errorf("unpin stale link %s: %w", path, err)
	}
	l.Close()
	return nil, nil
}

// pinnedMaps are the socket-LB maps pinned in the node's directory.
var pinnedMaps = []string{mapFrontends, mapServices, mapSlots, mapRevNAT, mapAffinity, mapSvcStats, mapReasons}

// Remove detaches node's socket LB and uplink programs and deletes their
// pins: the opposite of Open, for a node leaving or switching to another
// dataplane. Services stop being balanced for every process in the cgroup
// and for traffic from outside at once. Remove must not run while a
// Dataplane for the node is open.
func Remove(cfg Config) error {
	if !nodeName.MatchString(cfg.Node) {
		return fmt.Errorf("datapath/ebpf: node name %q: want [A-Za-z0-9._-]+", cfg.Node)
	}
	dir := cfg.PinDir()
	errs := []error{removeNodePort(dir)}
	for _, sl := range sockLinks {
		path := filepath.Join(dir, "links", sl.pin)
		l, err := link.LoadPinnedLink(path, nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("open pinned link %s: %w", path, err))
			continue
		}
		if err := l.Unpin(); err != nil {
			errs = append(errs, fmt.Errorf("unpin %s: %w", path, err))
		}
		l.Close() // the last reference: detaches
	}
	for _, m := range pinnedMaps {
		if err := os.Remove(filepath.Join(dir, m)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove pin: %w", err))
		}
	}
	// The directories go only if no other program family pinned there.
	for _, d := range []string{filepath.Join(dir, "links"), dir} {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENOTEMPTY) {
			errs = append(errs, fmt.Errorf("remove pin directory: %w", err))
		}
	}
	return errors.Join(errs...)
}

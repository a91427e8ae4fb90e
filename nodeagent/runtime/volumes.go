package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// prepareVolumes makes every volume of pod exist on the node and returns
// where each one is. emptyDir is a directory under the pod directory
// (a tmpfs for medium Memory); configMap and secret volumes are files
// written there (secrets on a tmpfs, so they never reach the disk);
// hostPath is checked or created following its type.
func (r *Runtime) prepareVolumes(ctx context.Context, pod *corev1.Pod, dir string) (map[string]volume, error) {
	out := make(map[string]volume, len(pod.Spec.Volumes))
	for _, v := range pod.Spec.Volumes {
		src := v.VolumeSource
		switch {
		case src.EmptyDir != nil:
			p := filepath.Join(dir, "volumes", "empty-dir", v.Name)
			if err := os.MkdirAll(p, 0o777); err != nil {
				return nil, err
			}
			if src.EmptyDir.Medium == corev1.StorageMediumMemory {
				size := ""
				if src.EmptyDir.SizeLimit != nil && !src.EmptyDir.SizeLimit.IsZero() {
					size = strconv.FormatInt(src.EmptyDir.SizeLimit.Value(), 10)
				}
				if err := mountTmpfs(p, size, 0o777); err != nil {
					return nil, err
				}
			}
			if err := os.Chmod(p, 0o777); err != nil {
				return nil, err
			}
			out[v.Name] = volume{hostPath: p}
		case src.HostPath != nil:
			if err := checkHostPath(src.HostPath); err != nil {
				return nil, err
			}
			out[v.Name] = volume{hostPath: src.HostPath.Path}
		case src.ConfigMap != nil:
			cs := src.ConfigMap
			optional := cs.Optional != nil && *cs.Optional
			cm, err := getConfigMap(ctx, r.cfg.Lookup, pod.Namespace, cs.Name, optional)
			if err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			data := map[string][]byte{}
			if cm != nil {
				for k, val := range cm.Data {
					data[k] = []byte(val)
				}
				for k, val := range cm.BinaryData {
					data[k] = val
				}
			}
			p := filepath.Join(dir, "volumes", "configmap", v.Name)
			if err := writeKeys(p, data, cs.Items, cs.DefaultMode, optional || cm == nil, false); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			out[v.Name] = volume{hostPath: p, readOnly: true}
		case src.Secret != nil:
			ss := src.Secret
			optional := ss.Optional != nil && *ss.Optional
			s, err := getSecret(ctx, r.cfg.Lookup, pod.Namespace, ss.SecretName, optional)
			if err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			data := map[string][]byte{}
			if s != nil {
				for k, val := range s.Data {
					data[k] = val
				}
				for k, val := range s.StringData {
					data[k] = []byte(val)
				}
			}
			p := filepath.Join(dir, "volumes", "secret", v.Name)
			if err := writeKeys(p, data, ss.Items, ss.DefaultMode, optional || s == nil, true); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			out[v.Name] = volume{hostPath: p, readOnly: true}
		default:
			return nil, configErrorf("volume %s: only emptyDir, hostPath, configMap and secret volumes are supported so far", v.Name)
		}
	}
	return out, nil
}

// writeKeys writes data into dir as files: all keys, or only items (each
// key to its path, with its mode). A missing item key is an error unless
// optional. With onTmpfs the directory is a tmpfs first.
func writeKeys(dir string, data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32, optional, onTmpfs bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if onTmpfs {
		if err := mountTmpfs(dir, "", 0o755); err != nil {
			return err
		}
	}
	mode := os.FileMode(0o644)
	if defaultMode != nil {
		mode = os.FileMode(*defaultMode) & 0o777
	}
	type file struct {
		path string
		data []byte
		mode os.FileMode
	}
	var files []file
	if len(items) == 0 {
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			files = append(files, file{k, data[k], mode})
		}
	} else {
		for _, it := range items {
			d, ok := data[it.Key]
			if !ok {
				if optional {
					continue
				}
				return configErrorf("key %q not found", it.Key)
			}
			m := mode
			if it.Mode != nil {
				m = os.FileMode(*it.Mode) & 0o777
			}
			files = append(files, file{it.Path, d, m})
		}
	}
	for _, f := range files {
		if filepath.IsAbs(f.path) || hasDotDot(f.path) {
			return configErrorf("path %q must be relative and stay inside the volume", f.path)
		}
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		tmp := p + ".weir-tmp"
		if err := os.WriteFile(tmp, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(tmp, f.mode); err != nil { // WriteFile's mode passes the umask
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			return err
		}
	}
	return nil
}

// checkHostPath checks (and for the *OrCreate types, creates) a hostPath
// volume's path.
func checkHostPath(h *corev1.HostPathVolumeSource) error {
	typ := corev1.HostPathUnset
	if h.Type != nil {
		typ = *h.Type
	}
	fi, err := os.Stat(h.Path)
	exists := err == nil
	switch typ {
	case corev1.HostPathUnset:
		return nil
	case corev1.HostPathDirectoryOrCreate:
		if !exists {
			return os.MkdirAll(h.Path, 0o755)
		}
		if !fi.IsDir() {
			return configErrorf("hostPath %s is not a directory", h.Path)
		}
		return nil
	case corev1.HostPathFileOrCreate:
		if !exists {
			if err := os.MkdirAll(filepath.Dir(h.Path), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(h.Path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
		if !fi.Mode().IsRegular() {
			return configErrorf("hostPath %s is not a file", h.Path)
		}
		return nil
	}
	if !exists {
		return configErrorf("hostPath %s does not exist", h.Path)
	}
	ok := false
	switch typ {
	case corev1.HostPathDirectory:
		ok = fi.IsDir()
	case corev1.HostPathFile:
		ok = fi.Mode().IsRegular()
	case corev1.HostPathSocket:
		ok = fi.Mode()&os.ModeSocket != 0
	case corev1.HostPathCharDev:
		ok = fi.Mode()&os.ModeCharDevice != 0
	case corev1.HostPathBlockDev:
		ok = fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0
	default:
		return configErrorf("hostPath %s: unknown type %q", h.Path, typ)
	}
	if !ok {
		return configErrorf("hostPath %s is not a %s", h.Path, typ)
	}
	return nil
}

// mountTmpfs mounts a tmpfs at dir unless one is there already.
func mountTmpfs(dir, size string, mode os.FileMode) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Type == unix.TMPFS_MAGIC && isMountpoint(dir) {
		return nil
	}
	opts := fmt.Sprintf("mode=%o", mode)
	if size != "" {
		opts += ",size=" + size
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs at %s: %w", dir, err)
	}
	return nil
}

// isMountpoint reports whether dir is on another device than its parent.
func isMountpoint(dir string) bool {
	var a, b unix.Stat_t
	if unix.Stat(dir, &a) != nil || unix.Stat(filepath.Dir(dir), &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}

// unmountUnder unmounts every mount at or below dir, deepest first.
func unmountUnder(dir string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var mps []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			mps = append(mps, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mps)))
	var errs []error
	for _, mp := range mps {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}

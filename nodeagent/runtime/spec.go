package runtime

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
)

// processArgs is the container's argv with Kubernetes' rules: command
// replaces the image entrypoint (and drops its cmd), args replace the
// image cmd; $(VAR) in both expands against the container's env (not
// the image's).
func processArgs(img ocispec.ImageConfig, c *corev1.Container, env []EnvVar) []string {
	lookup := envLookup(env)
	var argv []string
	switch {
	case len(c.Command) > 0:
		for _, a := range c.Command {
			argv = append(argv, Expand(a, lookup))
		}
		for _, a := range c.Args {
			argv = append(argv, Expand(a, lookup))
		}
	case len(c.Args) > 0:
		argv = append(argv, img.Entrypoint...)
		for _, a := range c.Args {
			argv = append(argv, Expand(a, lookup))
		}
	default:
		argv = append(append(argv, img.Entrypoint...), img.Cmd...)
	}
	return argv
}

// processEnv is the image's env with the container's on top.
func processEnv(img ocispec.ImageConfig, env []EnvVar) []string {
	out := make([]string, 0, len(img.Env)+len(env))
	pos := map[string]int{}
	add := func(kv string) {
		name, _, _ := strings.Cut(kv, "=")
		if i, ok := pos[name]; ok {
			out[i] = kv
			return
		}
		pos[name] = len(out)
		out = append(out, kv)
	}
	if len(img.Env) == 0 {
		add("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	for _, kv := range img.Env {
		add(kv)
	}
	for _, e := range env {
		add(e.Name + "=" + e.Value)
	}
	return out
}

func envLookup(env []EnvVar) func(string) (string, bool) {
	m := make(map[string]string, len(env))
	for _, e := range env {
		m[e.Name] = e.Value
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// workingDir is the container's cwd: its own, the image's, or /.
func workingDir(img ocispec.ImageConfig, c *corev1.Container) string {
	if c.WorkingDir != "" {
		return c.WorkingDir
	}
	if img.WorkingDir != "" {
		return img.WorkingDir
	}
	return "/"
}

// cpuPeriod is the CFS period the kubelet uses (100 ms).
const cpuPeriod = 100000

// cgroupResources converts resources to cgroup settings as the kubelet
// does: cpu request to shares (BestEffort gets 2), cpu limit to a CFS
// quota, memory limit to the memory limit. A request defaults to the
// limit when only the limit is given.
func cgroupResources(r corev1.ResourceRequirements) *specs.LinuxResources {
	out := &specs.LinuxResources{CPU: &specs.LinuxCPU{}}
	req, hasReq := r.Requests[corev1.ResourceCPU]
	lim, hasLim := r.Limits[corev1.ResourceCPU]
	if !hasReq && hasLim {
		req, hasReq = lim, true
	}
	shares := uint64(2)
	if hasReq && req.MilliValue() > 0 {
		shares = uint64(req.MilliValue()) * 1024 / 1000
		shares = max(2, min(shares, 262144))
	}
	out.CPU.Shares = &shares
	if hasLim && lim.MilliValue() > 0 {
		quota := max(lim.MilliValue()*cpuPeriod/1000, 1000)
		period := uint64(cpuPeriod)
		out.CPU.Quota, out.CPU.Period = &quota, &period
	}
	if m, ok := r.Limits[corev1.ResourceMemory]; ok && m.Value() > 0 {
		v := m.Value()
		out.Memory = &specs.LinuxMemory{Limit: &v}
	}
	return out
}

// volume is a pod volume prepared on the node.
type volume struct {
	hostPath string
	readOnly bool // configMap and secret volumes are always read-only
}

// podFiles are the per-pod files bind-mounted into every container.
type podFiles struct {
	hosts, resolv, hostname string
}

// containerMounts lists the bind mounts of a container: its volumeMounts
// (in order, subPath joined without escaping the volume), then the pod's
// /etc files unless a volumeMount covers them, then the termination
// message file.
func containerMounts(c *corev1.Container, vols map[string]volume, pf podFiles, termFile string) ([]specs.Mount, error) {
	var out []specs.Mount
	covered := map[string]bool{}
	for _, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			return nil, configErrorf("volumeMount %q: no volume of that name", vm.Name)
		}
		src := v.hostPath
		if vm.SubPath != "" {
			if filepath.IsAbs(vm.SubPath) || hasDotDot(vm.SubPath) {
				return nil, configErrorf("volumeMount %q: subPath %q must be a relative path inside the volume", vm.Name, vm.SubPath)
			}
			src = filepath.Join(src, filepath.Clean(vm.SubPath))
		}
		dst := path.Clean("/" + vm.MountPath)
		covered[dst] = true
		out = append(out, bindMount(src, dst, vm.ReadOnly || v.readOnly))
	}
	for _, f := range []struct{ dst, src string }{
		{"/etc/hosts", pf.hosts}, {"/etc/resolv.conf", pf.resolv}, {"/etc/hostname", pf.hostname},
	} {
		if f.src != "" && !covered[f.dst] {
			out = append(out, bindMount(f.src, f.dst, false))
		}
	}
	if termFile != "" {
		p := c.TerminationMessagePath
		if p == "" {
			p = corev1.TerminationMessagePathDefault
		}
		if p = path.Clean("/" + p); !covered[p] {
			out = append(out, bindMount(termFile, p, false))
		}
	}
	return out, nil
}

func hasDotDot(p string) bool {
	for _, part := range strings.Split(filepath.ToSlash(p), "/") {
		if part == ".." {
			return true
		}
	}
	return false
}

func bindMount(src, dst string, ro bool) specs.Mount {
	opt := "rw"
	if ro {
		opt = "ro"
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rprivate", opt}}
}

// podHostname is the pod's hostname: spec.hostname or its name, at most
// 63 bytes, without a trailing dot or dash.
func podHostname(pod *corev1.Pod) string {
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

// podFQDN is hostname.subdomain.namespace.svc.<domain> when the pod has a
// subdomain, else "".
func podFQDN(pod *corev1.Pod, clusterDomain string) string {
	if pod.Spec.Subdomain == "" || clusterDomain == "" {
		return ""
	}
	return fmt.Sprintf("%s.%s.%s.svc.%s", podHostname(pod), pod.Spec.Subdomain, pod.Namespace, clusterDomain)
}

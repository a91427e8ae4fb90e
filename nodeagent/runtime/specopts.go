package runtime

import (
	"context"
	"strings"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/nodeagent/podnet"
)

type specInput struct {
	pod       *corev1.Pod
	c         *corev1.Container
	imageUser string
	args, env []string
	cwd       string
	hostname  string
	mounts    []specs.Mount
	cgroup    string
	att       *podnet.Attachment
	nodeNetNS string
}

// buildSpecOpts turns a container's plan into OCI spec options on top of
// containerd's default spec (default capabilities, seccomp off as runc's
// default, /dev, /proc, /sys, a private /dev/shm).
func buildSpecOpts(in specInput) []oci.SpecOpts {
	opts := []oci.SpecOpts{
		oci.WithProcessArgs(in.args...),
		oci.WithEnv(in.env),
		oci.WithProcessCwd(in.cwd),
		oci.WithHostname(in.hostname),
		oci.WithMounts(in.mounts),
		oci.WithCgroup(in.cgroup),
		withResources(cgroupResources(in.c.Resources)),
	}
	switch {
	case in.att != nil:
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: in.att.NetNSPath}))
	case in.nodeNetNS != "":
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: in.nodeNetNS}))
	default:
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace))
	}

	// User: the container's securityContext over the pod's over the image.
	var uid, gid *int64
	var nonRoot *bool
	var groups []int64
	if psc := in.pod.Spec.SecurityContext; psc != nil {
		uid, gid, nonRoot = psc.RunAsUser, psc.RunAsGroup, psc.RunAsNonRoot
		groups = append(groups, psc.SupplementalGroups...)
		if psc.FSGroup != nil {
			groups = append(groups, *psc.FSGroup)
		}
	}
	sc := in.c.SecurityContext
	if sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = sc.RunAsGroup
		}
		if sc.RunAsNonRoot != nil {
			nonRoot = sc.RunAsNonRoot
		}
	}
	_ = nonRoot // enforced in the kubelet by refusing to start; not yet here
	switch {
	case uid != nil && gid != nil:
		opts = append(opts, oci.WithUIDGID(uint32(*uid), uint32(*gid)))
	case uid != nil:
		opts = append(opts, oci.WithUserID(uint32(*uid)))
	case in.imageUser != "":
		opts = append(opts, oci.WithUser(in.imageUser))
	}
	if uid == nil && gid != nil {
		g := uint32(*gid)
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			s.Process.User.GID = g
			return nil
		})
	}
	if len(groups) > 0 {
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			for _, g := range groups {
				s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, uint32(g))
			}
			return nil
		})
	}

	if sc != nil {
		if sc.Privileged != nil && *sc.Privileged {
			opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices)
		}
		if caps := sc.Capabilities; caps != nil {
			var drop, add []string
			dropAll := false
			for _, c := range caps.Drop {
				if strings.EqualFold(string(c), "ALL") {
					dropAll = true
					continue
				}
				drop = append(drop, capName(c))
			}
			for _, c := range caps.Add {
				add = append(add, capName(c))
			}
			if dropAll {
				opts = append(opts, oci.WithCapabilities(nil))
			}
			if len(drop) > 0 {
				opts = append(opts, oci.WithDroppedCapabilities(drop))
			}
			if len(add) > 0 {
				opts = append(opts, oci.WithAddedCapabilities(add))
			}
		}
		if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
			opts = append(opts, oci.WithRootFSReadonly())
		}
		if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			opts = append(opts, oci.WithNoNewPrivileges)
		}
	}
	return opts
}

func capName(c corev1.Capability) string {
	s := strings.ToUpper(string(c))
	if !strings.HasPrefix(s, "CAP_") {
		s = "CAP_" + s
	}
	return s
}

// withResources sets cpu and memory limits, keeping the default spec's
// device rules.
func withResources(res *specs.LinuxResources) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		s.Linux.Resources.CPU = res.CPU
		s.Linux.Resources.Memory = res.Memory
		return nil
	}
}

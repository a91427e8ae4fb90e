package podnet

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// HostsFile renders a pod's /etc/hosts as the kubelet does: localhost
// entries, the pod's own address with its hostname (and FQDN when the pod
// has a subdomain), then its hostAliases. A pod on the host network gets
// no own-address line.
func HostsFile(ip netip.Addr, hostname, fqdn string, aliases []corev1.HostAlias) []byte {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file.\n")
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	if ip.IsValid() && hostname != "" {
		if fqdn != "" && fqdn != hostname {
			fmt.Fprintf(&b, "%s\t%s\t%s\n", ip, fqdn, hostname)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
		}
	}
	if len(aliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, a := range aliases {
			fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
		}
	}
	return []byte(b.String())
}

// DNS is a resolver configuration.
type DNS struct {
	Servers  []string
	Searches []string
	Options  []string
}

// ResolvConf renders /etc/resolv.conf.
func ResolvConf(d DNS) []byte {
	var b strings.Builder
	for _, s := range d.Servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(d.Searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(d.Searches, " "))
	}
	if len(d.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(d.Options, " "))
	}
	return []byte(b.String())
}

// PodDNS is the resolver configuration of pod following its dnsPolicy and
// dnsConfig, as the kubelet builds it. clusterDNS are the cluster DNS
// servers (empty until cluster DNS exists), clusterDomain is usually
// "cluster.local", and host is the node's own configuration, used for
// dnsPolicy Default and for ClusterFirst while there is no cluster DNS.
func PodDNS(pod *corev1.Pod, clusterDNS []string, clusterDomain string, host DNS) DNS {
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	if policy == corev1.DNSClusterFirst && pod.Spec.HostNetwork {
		policy = corev1.DNSDefault
	}
	var d DNS
	switch policy {
	case corev1.DNSNone:
	case corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet:
		if len(clusterDNS) == 0 {
			d = host
			break
		}
		d.Servers = append([]string(nil), clusterDNS...)
		if clusterDomain != "" {
			d.Searches = []string{pod.Namespace + ".svc." + clusterDomain, "svc." + clusterDomain, clusterDomain}
		}
		d.Searches = append(d.Searches, host.Searches...)
		d.Options = []string{"ndots:5"}
	default: // Default: the node's configuration
		d = host
	}
	if c := pod.Spec.DNSConfig; c != nil {
		d.Servers = append(d.Servers, c.Nameservers...)
		d.Searches = append(d.Searches, c.Searches...)
		for _, o := range c.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			d.Options = mergeOption(d.Options, opt)
		}
	}
	d.Servers = uniq(d.Servers)
	d.Searches = uniq(d.Searches)
	if len(d.Servers) > 3 {
		d.Servers = d.Servers[:3]
	}
	if len(d.Searches) > 32 {
		d.Searches = d.Searches[:32]
	}
	return d
}

// ParseResolvConf reads nameserver, search and options lines.
func ParseResolvConf(b []byte) DNS {
	var d DNS
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "nameserver":
			d.Servers = append(d.Servers, f[1])
		case "search", "domain":
			d.Searches = f[1:]
		case "options":
			d.Options = append(d.Options, f[1:]...)
		}
	}
	return d
}

// mergeOption replaces an option of the same name or appends opt.
func mergeOption(opts []string, opt string) []string {
	name, _, _ := strings.Cut(opt, ":")
	for i, o := range opts {
		if n, _, _ := strings.Cut(o, ":"); n == name {
			opts[i] = opt
			return opts
		}
	}
	return append(opts, opt)
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

package podnet

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestHostsFile(t *testing.T) {
	got := string(HostsFile(netip.MustParseAddr("10.244.1.5"), "web-0", "web-0.web.default.svc.cluster.local",
		[]corev1.HostAlias{{IP: "1.2.3.4", Hostnames: []string{"foo", "bar"}}}))
	want := "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n" +
		"10.244.1.5\tweb-0.web.default.svc.cluster.local\tweb-0\n\n# Entries added by HostAliases.\n1.2.3.4\tfoo\tbar\n"
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("hosts (-want +got):\n%s", d)
	}
}

func TestPodDNS(t *testing.T) {
	host := DNS{Servers: []string{"192.168.1.1"}, Searches: []string{"lan"}}
	ndots := "2"
	tests := []struct {
		name       string
		spec       corev1.PodSpec
		clusterDNS []string
		want       DNS
	}{
		{"cluster first", corev1.PodSpec{}, []string{"10.96.0.10"},
			DNS{Servers: []string{"10.96.0.10"}, Searches: []string{"ns1.svc.cluster.local", "svc.cluster.local", "cluster.local", "lan"}, Options: []string{"ndots:5"}}},
		{"cluster first without cluster DNS falls back to the node", corev1.PodSpec{}, nil, host},
		{"host network cluster first is Default", corev1.PodSpec{HostNetwork: true}, []string{"10.96.0.10"}, host},
		{"default", corev1.PodSpec{DNSPolicy: corev1.DNSDefault}, []string{"10.96.0.10"}, host},
		{"none with dnsConfig", corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{
			Nameservers: []string{"8.8.8.8"}, Searches: []string{"a.b"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &ndots}, {Name: "edns0"}}}},
			[]string{"10.96.0.10"}, DNS{Servers: []string{"8.8.8.8"}, Searches: []string{"a.b"}, Options: []string{"ndots:2", "edns0"}}},
		{"cluster first with dnsConfig overrides ndots", corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &ndots}}}},
			[]string{"10.96.0.10"}, DNS{Servers: []string{"10.96.0.10"}, Searches: []string{"ns1.svc.cluster.local", "svc.cluster.local", "cluster.local", "lan"}, Options: []string{"ndots:2"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1"}, Spec: tc.spec}
			h := DNS{Servers: append([]string(nil), host.Servers...), Searches: append([]string(nil), host.Searches...)}
			got := PodDNS(pod, tc.clusterDNS, "cluster.local", h)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("dns (-want +got):\n%s", d)
			}
		})
	}
	if got := string(ResolvConf(DNS{Servers: []string{"10.96.0.10"}, Searches: []string{"a", "b"}, Options: []string{"ndots:5"}})); got != "nameserver 10.96.0.10\nsearch a b\noptions ndots:5\n" {
		t.Errorf("resolv.conf %q", got)
	}
	if d := cmp.Diff(DNS{Servers: []string{"1.1.1.1", "9.9.9.9"}, Searches: []string{"x", "y"}, Options: []string{"ndots:1"}},
		ParseResolvConf([]byte("# c\nnameserver 1.1.1.1\nnameserver 9.9.9.9\nsearch x y\noptions ndots:1\n"))); d != "" {
		t.Errorf("parse (-want +got):\n%s", d)
	}
}

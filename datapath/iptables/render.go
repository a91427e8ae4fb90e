// Package iptables is the baseline data plane: the rules kube-proxy's
// iptables mode writes, rendered by a pure function of the desired state
// and loaded with one iptables-restore --noflush, full or partial, on the
// nf_tables-backed `iptables` or on `iptables-legacy`. It exists to be
// measured against datapath/ebpf, so it follows kube-proxy's chain layout,
// hashing, rule order and probabilities rather than improving on them.
package iptables

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/datapath"
)

// Options shape the rules as kube-proxy's flags do.
type Options struct {
	// ClusterCIDR: traffic to a ClusterIP from outside it is masqueraded
	// (kube-proxy's --cluster-cidr local detector). Invalid means
	// masquerade everything (--masquerade-all).
	ClusterCIDR netip.Prefix
	// MasqueradeBit is the fwmark bit of KUBE-MARK-MASQ (kube-proxy: 14).
	MasqueradeBit int
	// LargeClusterEndpoints: above this many endpoints in total,
	// per-endpoint comments are left out (kube-proxy: 1000).
	LargeClusterEndpoints int
	// RandomFully adds --random-fully to MASQUERADE when the binary supports it.
	RandomFully bool
}

// DefaultOptions are kube-proxy's defaults with weir's cluster CIDR.
func DefaultOptions() Options {
	return Options{
		ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"), MasqueradeBit: 14,
		LargeClusterEndpoints: 1000, RandomFully: true,
	}
}

// Chain prefixes, as kube-proxy names them.
const (
	chainServices         = "KUBE-SERVICES"
	chainExternalServices = "KUBE-EXTERNAL-SERVICES"
	chainNodePorts        = "KUBE-NODEPORTS"
	chainPostrouting      = "KUBE-POSTROUTING"
	chainMarkMasq         = "KUBE-MARK-MASQ"
	chainForward          = "KUBE-FORWARD"
	chainProxyFirewall    = "KUBE-PROXY-FIREWALL"
)

// portName is kube-proxy's ServicePortName string: "ns/name" plus
// ":port" when the port has a name.
func portName(s *datapath.Service, p *datapath.Port) string {
	n := s.Namespace + "/" + s.Name
	if p.Name != "" {
		n += ":" + p.Name
	}
	return n
}

func hash16(s string) string {
	h := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(h[:])[:16]
}

func protoLower(p corev1.Protocol) string { return strings.ToLower(string(p)) }

// ServiceChain, localChain, externalChain and endpointChain are
// kube-proxy's chain names for one service port.
func serviceChain(spn string, p corev1.Protocol) string {
	return "KUBE-SVC-" + hash16(spn+protoLower(p))
}
func localChain(spn string, p corev1.Protocol) string {
	return "KUBE-SVL-" + hash16(spn+protoLower(p))
}
func externalChain(spn string, p corev1.Protocol) string {
	return "KUBE-EXT-" + hash16(spn+protoLower(p))
}
func endpointChain(spn string, p corev1.Protocol, ep string) string {
	return "KUBE-SEP-" + hash16(spn+protoLower(p)+ep)
}

// Rules is one rendered ruleset: the input of iptables-restore, and per
// service port the chains it owns with a fingerprint of their rules, so a
// later sync can send only what changed.
type Rules struct {
	// Chains maps each per-service chain to its rules (without the -A
	// prefix handled by Restore).
	Chains map[string][]string
	// Owner maps each per-service chain to its service port name.
	Owner map[string]string
	// Filter and NAT hold the global chains' rules in order.
	Filter map[string][]string
	NAT    map[string][]string
}

var (
	filterGlobal = []string{chainNodePorts, chainServices, chainExternalServices, chainForward, chainProxyFirewall}
	natGlobal    = []string{chainNodePorts, chainServices, chainMarkMasq, chainPostrouting}
)

// comment quotes a comment the way kube-proxy writes it.
func comment(c string) string {
	if strings.ContainsAny(c, " \"") {
		return "-m comment --comment " + strconv.Quote(c)
	}
	return "-m comment --comment " + c
}

// probability formats 1/n as kube-proxy does (%0.10f).
func probability(n int) string { return fmt.Sprintf("%0.10f", 1.0/float64(n)) }

// Render computes the whole ruleset for st. It is pure: equal input gives
// byte-equal output.
func Render(st *datapath.State, o Options) *Rules {
	r := &Rules{Chains: map[string][]string{}, Owner: map[string]string{}, Filter: map[string][]string{}, NAT: map[string][]string{}}
	mark := fmt.Sprintf("%#x", 1<<o.MasqueradeBit)
	total := 0
	for i := range st.Services {
		for j := range st.Services[i].Ports {
			total += len(st.Services[i].Ports[j].Backends)
		}
	}
	large := o.LargeClusterEndpoints > 0 && total > o.LargeClusterEndpoints

	natAdd := func(chain, rule string) { r.NAT[chain] = append(r.NAT[chain], rule) }
	filterAdd := func(chain, rule string) { r.Filter[chain] = append(r.Filter[chain], rule) }
	own := func(spn, chain, rule string) {
		r.Owner[chain] = spn
		r.Chains[chain] = append(r.Chains[chain], rule)
	}

	for i := range st.Services {
		s := &st.Services[i]
		for j := range s.Ports {
			p := &s.Ports[j]
			spn := portName(s, p)
			proto := protoLower(p.Protocol)
			match := fmt.Sprintf("-m %s -p %s", proto, proto)
			svcChain := serviceChain(spn, p.Protocol)
			extChain := externalChain(spn, p.Protocol)
			svlChain := localChain(spn, p.Protocol)
			cluster := p.Usable(st.NodeName, s.InternalTrafficLocal)
			local := p.Usable(st.NodeName, true)
			hasExternal := p.NodePort != 0 || len(s.ExternalIPs) > 0 || len(s.LoadBalancerIPs) > 0
			vip := s.ClusterIP.String()

			// ClusterIP.
			if len(cluster) > 0 {
				natAdd(chainServices, fmt.Sprintf("%s %s -d %s --dport %d -j %s", comment(spn+" cluster IP"), match, vip, p.Port, svcChain))
			} else {
				target := "REJECT"
				if s.InternalTrafficLocal {
					target = "DROP"
				}
				filterAdd(chainServices, fmt.Sprintf("%s %s -d %s --dport %d -j %s", comment(spn+" has no endpoints"), match, vip, p.Port, target))
			}

			// External destinations: externalIPs, load-balancer IPs, NodePort.
			extUsable := cluster
			if s.ExternalTrafficLocal {
				extUsable = local
			}
			if hasExternal {
				for _, ip := range s.ExternalIPs {
					if len(extUsable) > 0 {
						natAdd(chainServices, fmt.Sprintf("%s %s -d %s --dport %d -j %s", comment(spn+" external IP"), match, ip, p.Port, extChain))
					} else {
						filterAdd(chainExternalServices, fmt.Sprintf("%s %s -d %s --dport %d -j REJECT", comment(spn+" has no endpoints"), match, ip, p.Port))
					}
				}
				for _, ip := range s.LoadBalancerIPs {
					if len(extUsable) > 0 {
						natAdd(chainServices, fmt.Sprintf("%s %s -d %s --dport %d -j %s", comment(spn+" loadbalancer IP"), match, ip, p.Port, extChain))
					} else {
						filterAdd(chainExternalServices, fmt.Sprintf("%s %s -d %s --dport %d -j REJECT", comment(spn+" has no endpoints"), match, ip, p.Port))
					}
				}
				if p.NodePort != 0 {
					if len(extUsable) > 0 {
						natAdd(chainNodePorts, fmt.Sprintf("%s %s --dport %d -j %s", comment(spn), match, p.NodePort, extChain))
					} else {
						filterAdd(chainExternalServices, fmt.Sprintf("%s -m addrtype --dst-type LOCAL %s --dport %d -j REJECT", comment(spn+" has no endpoints"), match, p.NodePort))
					}
				}
			}

			// KUBE-EXT-*.
			if hasExternal && len(extUsable) > 0 {
				if !s.ExternalTrafficLocal {
					own(spn, extChain, fmt.Sprintf("%s -j %s", comment("masquerade traffic for "+spn+" external destinations"), chainMarkMasq))
					own(spn, extChain, "-j "+svcChain)
				} else {
					if o.ClusterCIDR.IsValid() {
						own(spn, extChain, fmt.Sprintf("%s -s %s -j %s", comment("pod traffic for "+spn+" external destinations"), o.ClusterCIDR, svcChain))
					}
					own(spn, extChain, fmt.Sprintf("%s -m addrtype --src-type LOCAL -j %s", comment("masquerade LOCAL traffic for "+spn+" external destinations"), chainMarkMasq))
					own(spn, extChain, fmt.Sprintf("%s -m addrtype --src-type LOCAL -j %s", comment("route LOCAL traffic for "+spn+" external destinations"), svcChain))
					own(spn, extChain, "-j "+svlChain)
				}
			}

			// KUBE-SVC-* (and KUBE-SVL-*) with their endpoints.
			if len(cluster) > 0 || (hasExternal && len(extUsable) > 0) {
				masq := fmt.Sprintf("%s %s -d %s --dport %d", comment(spn+" cluster IP"), match, vip, p.Port)
				if o.ClusterCIDR.IsValid() {
					masq += " ! -s " + o.ClusterCIDR.String()
				}
				own(spn, svcChain, masq+" -j "+chainMarkMasq)
				lbRules(own, spn, svcChain, p, cluster, s.AffinityTimeout.Seconds(), large)
				if s.ExternalTrafficLocal && hasExternal {
					lbRules(own, spn, svlChain, p, local, s.AffinityTimeout.Seconds(), large)
				}
				seps := map[string]bool{}
				for _, set := range [][]datapath.Backend{cluster, local} {
					for _, b := range set {
						ep := netip.AddrPortFrom(b.Addr, b.Port).String()
						sep := endpointChain(spn, p.Protocol, ep)
						if seps[sep] {
							continue
						}
						seps[sep] = true
						c := comment(spn)
						if large {
							c = ""
						}
						own(spn, sep, strings.TrimSpace(fmt.Sprintf("%s -s %s -j %s", c, b.Addr, chainMarkMasq)))
						dnat := strings.TrimSpace(c + " ")
						if s.AffinityTimeout > 0 {
							dnat = strings.TrimSpace(dnat + " -m recent --name " + sep + " --set")
						}
						own(spn, sep, strings.TrimSpace(fmt.Sprintf("%s %s -j DNAT --to-destination %s", dnat, match, ep)))
					}
				}
			}
		}
	}

	// The fixed rules.
	r.NAT[chainServices] = append(r.NAT[chainServices], comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain")+" -m addrtype --dst-type LOCAL -j "+chainNodePorts)
	natAdd(chainMarkMasq, "-j MARK --or-mark "+mark)
	natAdd(chainPostrouting, fmt.Sprintf("-m mark ! --mark %s/%s -j RETURN", mark, mark))
	natAdd(chainPostrouting, "-j MARK --xor-mark "+mark)
	masq := comment("kubernetes service traffic requiring SNAT") + " -j MASQUERADE"
	if o.RandomFully {
		masq += " --random-fully"
	}
	natAdd(chainPostrouting, masq)
	filterAdd(chainForward, "-m conntrack --ctstate INVALID -j DROP")
	filterAdd(chainForward, fmt.Sprintf("%s -m mark --mark %s/%s -j ACCEPT", comment("kubernetes forwarding rules"), mark, mark))
	filterAdd(chainForward, comment("kubernetes forwarding conntrack rule")+" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
	return r
}

// lbRules writes the affinity and statistic-mode rules of one service chain.
func lbRules(own func(spn, chain, rule string), spn, chain string, p *datapath.Port, eps []datapath.Backend, affinity float64, large bool) {
	n := len(eps)
	seps := make([]string, n)
	for i, b := range eps {
		seps[i] = endpointChain(spn, p.Protocol, netip.AddrPortFrom(b.Addr, b.Port).String())
	}
	c := func(i int) string {
		if large {
			return ""
		}
		return comment(spn+" -> "+netip.AddrPortFrom(eps[i].Addr, eps[i].Port).String()) + " "
	}
	if affinity > 0 {
		for i := range eps {
			own(spn, chain, fmt.Sprintf("%s-m recent --name %s --rcheck --seconds %d --reap -j %s", c(i), seps[i], int(affinity), seps[i]))
		}
	}
	for i := range eps {
		if i < n-1 {
			own(spn, chain, fmt.Sprintf("%s-m statistic --mode random --probability %s -j %s", c(i), probability(n-i), seps[i]))
		} else {
			own(spn, chain, fmt.Sprintf("%s-j %s", c(i), seps[i]))
		}
	}
}

// Restore renders the iptables-restore input. With prev nil it is a full
// sync: every chain is declared and written, and of existing (the
// per-service chains found in the kernel) those no longer used are deleted.
// With prev set it is a partial sync (KEP-3453): the global chains are
// always rewritten, per-service chains only when their rules differ from
// prev, and chains prev had that are no longer used are deleted.
func (r *Rules) Restore(prev *Rules, existing []string) []byte {
	var b bytes.Buffer
	changed := func(ch string) bool {
		if prev == nil {
			return true
		}
		old, ok := prev.Chains[ch]
		if !ok || len(old) != len(r.Chains[ch]) {
			return true
		}
		for i := range old {
			if old[i] != r.Chains[ch][i] {
				return true
			}
		}
		return false
	}
	b.WriteString("*filter\n")
	for _, ch := range filterGlobal {
		fmt.Fprintf(&b, ":%s - [0:0]\n", ch)
	}
	for _, ch := range filterGlobal {
		for _, rule := range r.Filter[ch] {
			fmt.Fprintf(&b, "-A %s %s\n", ch, rule)
		}
	}
	b.WriteString("COMMIT\n*nat\n")
	for _, ch := range natGlobal {
		fmt.Fprintf(&b, ":%s - [0:0]\n", ch)
	}
	names := sortedKeys(r.Chains)
	for _, ch := range names {
		if changed(ch) {
			fmt.Fprintf(&b, ":%s - [0:0]\n", ch)
		}
	}
	var gone []string
	old := existing
	if prev != nil {
		old = sortedKeys(prev.Chains)
	}
	for _, ch := range old {
		if _, ok := r.Chains[ch]; !ok {
			gone = append(gone, ch)
			fmt.Fprintf(&b, ":%s - [0:0]\n", ch)
		}
	}
	for _, ch := range natGlobal {
		for _, rule := range r.NAT[ch] {
			fmt.Fprintf(&b, "-A %s %s\n", ch, rule)
		}
	}
	for _, ch := range names {
		if !changed(ch) {
			continue
		}
		for _, rule := range r.Chains[ch] {
			fmt.Fprintf(&b, "-A %s %s\n", ch, rule)
		}
	}
	for _, ch := range gone {
		fmt.Fprintf(&b, "-X %s\n", ch)
	}
	b.WriteString("COMMIT\n")
	return b.Bytes()
}

func sortedKeys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	// Service chains first, then external, local and endpoint chains, as
	// kube-proxy orders them; names within a kind sorted.
	rank := func(s string) int {
		switch {
		case strings.HasPrefix(s, "KUBE-SVC-"):
			return 0
		case strings.HasPrefix(s, "KUBE-SVL-"):
			return 1
		case strings.HasPrefix(s, "KUBE-EXT-"):
			return 2
		default:
			return 3
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		if c := cmp.Compare(rank(a), rank(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return out
}

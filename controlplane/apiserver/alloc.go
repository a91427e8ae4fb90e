package apiserver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"weir.dev/weir/controlplane/storage"
)

// Allocations are claim keys written in the object's own transaction (see
// storage.Claims): a value is honoured or refused, never given twice, and
// released with its owner.
const (
	claimServiceIP = "/registry/ranges/serviceips/"
	claimNodePort  = "/registry/ranges/servicenodeports/"
	claimPodCIDR   = "/registry/ranges/podcidrs/"
)

// Allocator hands out ClusterIPs, NodePorts and node pod CIDRs.
type Allocator struct {
	ServiceCIDR  netip.Prefix
	NodePortMin  int
	NodePortMax  int
	ClusterCIDR  netip.Prefix
	NodeCIDRBits int // prefix length of each node's pod CIDR (24)
	store        *storage.Store
}

// errRetryRandom says a randomly chosen value was taken meanwhile: choose again.
var errRetryRandom = errors.New("randomly chosen value taken")

// claimsOf lists the claims an existing object holds.
func claimsOf(obj runtime.Object) []string {
	switch o := obj.(type) {
	case *corev1.Service:
		var out []string
		for _, ip := range serviceIPs(o) {
			out = append(out, claimServiceIP+ip)
		}
		for _, p := range nodePorts(o) {
			out = append(out, claimNodePort+strconv.Itoa(p))
		}
		return out
	case *corev1.Node:
		if o.Spec.PodCIDR != "" {
			return []string{claimPodCIDR + cidrKey(o.Spec.PodCIDR)}
		}
	}
	return nil
}

func cidrKey(c string) string { return strings.ReplaceAll(c, "/", "-") }

func serviceIPs(s *corev1.Service) []string {
	if s.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, ip := range append([]string{s.Spec.ClusterIP}, s.Spec.ClusterIPs...) {
		if ip == "" || ip == corev1.ClusterIPNone || seen[ip] {
			continue
		}
		seen[ip] = true
		out = append(out, ip)
	}
	return out
}

func nodePorts(s *corev1.Service) []int {
	var out []int
	seen := map[int32]bool{}
	for _, p := range s.Spec.Ports {
		if p.NodePort != 0 && !seen[p.NodePort] {
			seen[p.NodePort] = true
			out = append(out, int(p.NodePort))
		}
	}
	if s.Spec.HealthCheckNodePort != 0 && !seen[s.Spec.HealthCheckNodePort] {
		out = append(out, int(s.Spec.HealthCheckNodePort))
	}
	return out
}

func wantsNodePorts(t corev1.ServiceType) bool {
	return t == corev1.ServiceTypeNodePort || t == corev1.ServiceTypeLoadBalancer
}

// allocate fills in the values obj needs and returns the claims to take
// and release relative to old (nil on create). When a claim turns out to be
// taken, claimError tells a value chosen here (choose again) from one the
// client asked for (422).
func (a *Allocator) allocate(ctx context.Context, obj, old runtime.Object) (storage.Claims, error) {
	switch o := obj.(type) {
	case *corev1.Service:
		var prev *corev1.Service
		if old != nil {
			prev = old.(*corev1.Service)
		}
		return a.allocateService(o, prev)
	case *corev1.Node:
		if old != nil {
			prevCIDR := old.(*corev1.Node).Spec.PodCIDR
			if prevCIDR != "" && o.Spec.PodCIDR == "" {
				// A node cannot drop its CIDR by writing an object without it.
				o.Spec.PodCIDR, o.Spec.PodCIDRs = prevCIDR, old.(*corev1.Node).Spec.PodCIDRs
			}
			if o.Spec.PodCIDR != prevCIDR {
				return storage.Claims{}, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Node").GroupKind(), o.Name,
					field.ErrorList{field.Forbidden(field.NewPath("spec", "podCIDR"), "may not change once assigned")})
			}
			return storage.Claims{}, nil
		}
		return a.allocateNode(ctx, o)
	}
	return storage.Claims{}, nil
}

func (a *Allocator) allocateService(s *corev1.Service, old *corev1.Service) (storage.Claims, error) {
	var c storage.Claims
	had := map[string]bool{}
	if old != nil {
		for _, k := range claimsOf(old) {
			had[k] = true
		}
	}
	gk := corev1.SchemeGroupVersion.WithKind("Service").GroupKind()
	invalid := func(e *field.Error) error { return apierrors.NewInvalid(gk, s.Name, field.ErrorList{e}) }

	// ClusterIP.
	switch {
	case s.Spec.Type == corev1.ServiceTypeExternalName:
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil
	case s.Spec.ClusterIP == corev1.ClusterIPNone:
		s.Spec.ClusterIPs = []string{corev1.ClusterIPNone}
	case s.Spec.ClusterIP == "" && old != nil && len(serviceIPs(old)) > 0:
		s.Spec.ClusterIP, s.Spec.ClusterIPs = old.Spec.ClusterIP, old.Spec.ClusterIPs
	case s.Spec.ClusterIP == "":
		ip, err := a.randomIP()
		if err != nil {
			return c, err
		}
		s.Spec.ClusterIP, s.Spec.ClusterIPs = ip, []string{ip}
	default:
		ip, err := netip.ParseAddr(s.Spec.ClusterIP)
		if err != nil {
			return c, invalid(field.Invalid(field.NewPath("spec", "clusterIP"), s.Spec.ClusterIP, "must be a valid IP address"))
		}
		if !had[claimServiceIP+ip.String()] && !a.ServiceCIDR.Contains(ip) {
			return c, invalid(field.Invalid(field.NewPath("spec", "clusterIPs"), s.Spec.ClusterIPs,
				fmt.Sprintf("failed to allocate IP %s: the provided IP (%s) is not in the valid range. The range of valid IPs is %s", ip, ip, a.ServiceCIDR)))
		}
		s.Spec.ClusterIPs = []string{ip.String()}
	}

	// NodePorts.
	if !wantsNodePorts(s.Spec.Type) {
		for i := range s.Spec.Ports {
			s.Spec.Ports[i].NodePort = 0
		}
	} else {
		oldPorts := map[string]int32{}
		if old != nil {
			for _, p := range old.Spec.Ports {
				oldPorts[string(p.Protocol)+"/"+strconv.Itoa(int(p.Port))] = p.NodePort
			}
		}
		used := map[int32]bool{}
		for i := range s.Spec.Ports {
			p := &s.Spec.Ports[i]
			if p.NodePort == 0 {
				if prev := oldPorts[string(p.Protocol)+"/"+strconv.Itoa(int(p.Port))]; prev != 0 {
					p.NodePort = prev
				}
			}
			if p.NodePort != 0 {
				if !had[claimNodePort+strconv.Itoa(int(p.NodePort))] && (int(p.NodePort) < a.NodePortMin || int(p.NodePort) > a.NodePortMax) {
					return c, invalid(field.Invalid(field.NewPath("spec", "ports").Index(i).Child("nodePort"), p.NodePort,
						fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", a.NodePortMin, a.NodePortMax)))
				}
				used[p.NodePort] = true
			}
		}
		pick := func() int32 {
			for range 64 {
				n := int32(a.NodePortMin + rand.IntN(a.NodePortMax-a.NodePortMin+1))
				if !used[n] {
					used[n] = true
					return n
				}
			}
			return 0
		}
		for i := range s.Spec.Ports {
			if p := &s.Spec.Ports[i]; p.NodePort == 0 {
				p.NodePort = pick()
			}
		}
		// A LoadBalancer that keeps client addresses (Local) answers health
		// checks on a node port of its own.
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
			if s.Spec.HealthCheckNodePort == 0 && old != nil {
				s.Spec.HealthCheckNodePort = old.Spec.HealthCheckNodePort
			}
			if s.Spec.HealthCheckNodePort == 0 {
				s.Spec.HealthCheckNodePort = pick()
			}
		} else {
			s.Spec.HealthCheckNodePort = 0
		}
	}
	if !wantsNodePorts(s.Spec.Type) {
		s.Spec.HealthCheckNodePort = 0
	}

	want := map[string]bool{}
	for _, k := range claimsOf(s) {
		want[k] = true
		if !had[k] {
			c.Take = append(c.Take, k)
		}
	}
	for k := range had {
		if !want[k] {
			c.Release = append(c.Release, k)
		}
	}
	return c, nil
}

func (a *Allocator) randomIP() (string, error) {
	base := a.ServiceCIDR.Masked().Addr()
	bits := base.BitLen() - a.ServiceCIDR.Bits()
	if bits < 2 || !base.Is4() {
		return "", apierrors.NewInternalError(fmt.Errorf("service CIDR %s is too small", a.ServiceCIDR))
	}
	size := uint32(1) << bits
	// Skip the network address and the first host, which Kubernetes keeps
	// for the "kubernetes" Service; skip the broadcast address.
	off := 2 + rand.Uint32N(size-3)
	b := base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += off
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String(), nil
}

func (a *Allocator) allocateNode(ctx context.Context, n *corev1.Node) (storage.Claims, error) {
	gk := corev1.SchemeGroupVersion.WithKind("Node").GroupKind()
	if n.Spec.PodCIDR != "" {
		p, err := netip.ParsePrefix(n.Spec.PodCIDR)
		if err != nil || !a.ClusterCIDR.Contains(p.Addr()) || p.Bits() < a.ClusterCIDR.Bits() {
			return storage.Claims{}, apierrors.NewInvalid(gk, n.Name, field.ErrorList{field.Invalid(field.NewPath("spec", "podCIDR"), n.Spec.PodCIDR,
				fmt.Sprintf("must be a CIDR inside the cluster CIDR %s", a.ClusterCIDR))})
		}
		n.Spec.PodCIDRs = []string{p.String()}
		return storage.Claims{Take: []string{claimPodCIDR + cidrKey(p.String())}}, nil
	}
	resp, err := a.store.Client().Get(ctx, claimPodCIDR, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return storage.Claims{}, fmt.Errorf("read pod CIDR claims: %w", err)
	}
	taken := map[string]bool{}
	for _, kv := range resp.Kvs {
		taken[strings.TrimPrefix(string(kv.Key), claimPodCIDR)] = true
	}
	base := a.ClusterCIDR.Masked().Addr().As4()
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	count := uint32(1) << (a.NodeCIDRBits - a.ClusterCIDR.Bits())
	step := uint32(1) << (32 - a.NodeCIDRBits)
	for i := range count {
		x := v + i*step
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)}), a.NodeCIDRBits)
		if !taken[cidrKey(p.String())] {
			n.Spec.PodCIDR, n.Spec.PodCIDRs = p.String(), []string{p.String()}
			return storage.Claims{Take: []string{claimPodCIDR + cidrKey(p.String())}}, nil
		}
	}
	return storage.Claims{}, apierrors.NewInvalid(gk, n.Name, field.ErrorList{field.Invalid(field.NewPath("spec", "podCIDR"), "",
		fmt.Sprintf("no pod CIDR left in %s", a.ClusterCIDR))})
}

// claimError turns a taken claim into the 422 Kubernetes gives for a
// requested value, or errRetryRandom when the value was chosen at random.
func claimError(obj, requested runtime.Object, taken *storage.ClaimTakenError) error {
	key := taken.Claim
	switch o := obj.(type) {
	case *corev1.Service:
		req := requested.(*corev1.Service)
		gk := corev1.SchemeGroupVersion.WithKind("Service").GroupKind()
		if strings.HasPrefix(key, claimServiceIP) {
			ip := strings.TrimPrefix(key, claimServiceIP)
			if req.Spec.ClusterIP != ip {
				return errRetryRandom
			}
			return apierrors.NewInvalid(gk, o.Name, field.ErrorList{field.Invalid(field.NewPath("spec", "clusterIPs"), []string{ip},
				fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", ip))})
		}
		port, _ := strconv.Atoi(strings.TrimPrefix(key, claimNodePort))
		for i, p := range req.Spec.Ports {
			if int(p.NodePort) == port {
				return apierrors.NewInvalid(gk, o.Name, field.ErrorList{field.Invalid(field.NewPath("spec", "ports").Index(i).Child("nodePort"), port,
					"provided port is already allocated")})
			}
		}
		return errRetryRandom
	case *corev1.Node:
		if requested.(*corev1.Node).Spec.PodCIDR == "" {
			return errRetryRandom
		}
		return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Node").GroupKind(), o.Name,
			field.ErrorList{field.Invalid(field.NewPath("spec", "podCIDR"), o.Spec.PodCIDR, "is already allocated to another node")})
	}
	return apierrors.NewInternalError(taken)
}

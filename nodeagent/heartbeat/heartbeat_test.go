package heartbeat_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"weir.dev/weir/nodeagent/heartbeat"
	"weir.dev/weir/nodeagent/join"
	"weir.dev/weir/test/cluster"
)

// A node registers as itself, gets a pod CIDR, reports Ready, and keeps
// its Lease fresh.
func TestRegisterAndRenew(t *testing.T) {
	s := cluster.Start(t)
	rc, err := join.Join(t.Context(), join.Config{Server: s.URL, CAData: s.CA.CertPEM(), BootstrapToken: s.BootstrapToken, NodeName: "n1", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := heartbeat.Config{NodeName: "n1", NodeIP: netip.MustParseAddr("10.99.0.2"), LeaseDuration: 2 * time.Second}
	// First as an agent whose runtime is still starting: NotReady, with
	// the reason and message Kubernetes shows.
	starting := cfg
	starting.NotReady = "runtime starting"
	n, err := heartbeat.Register(t.Context(), c, starting)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Status.Conditions) != 1 || n.Status.Conditions[0].Status != corev1.ConditionFalse ||
		n.Status.Conditions[0].Reason != "KubeletNotReady" || n.Status.Conditions[0].Message != "runtime starting" {
		t.Fatalf("starting node conditions: %+v", n.Status.Conditions)
	}
	if n, err = heartbeat.Register(t.Context(), c, cfg); err != nil {
		t.Fatal(err)
	}
	if n.Spec.PodCIDR == "" {
		t.Fatalf("no pod CIDR assigned")
	}
	ready := false
	for _, cond := range n.Status.Conditions {
		ready = ready || (cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue)
	}
	if !ready || n.Status.Addresses[0].Address != "10.99.0.2" || n.Status.Allocatable.Pods().Value() != 110 {
		t.Fatalf("node status: %+v", n.Status)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go heartbeat.Run(ctx, c, cfg)
	admin := s.Client(t)
	var first time.Time
	cluster.Eventually(t, 20*time.Second, "the lease is renewed", func() (bool, error) {
		l, err := admin.CoordinationV1().Leases(heartbeat.LeaseNamespace).Get(t.Context(), "n1", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if first.IsZero() {
			first = l.Spec.RenewTime.Time
			return false, nil
		}
		return l.Spec.RenewTime.After(first), nil
	})
}

// Package heartbeat registers a node's Node object and keeps it alive: it
// creates or updates the Node with its addresses and capacity, reports the
// Ready condition, and renews the node's Lease in kube-node-lease, as the
// kubelet does. It owns the node's Node status and Lease only.
package heartbeat

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// LeaseNamespace holds node leases.
const LeaseNamespace = "kube-node-lease"

// Config describes the node.
type Config struct {
	NodeName string
	NodeIP   netip.Addr
	Labels   map[string]string
	// Capacity defaults to this machine's CPUs, 110 pods and its memory.
	Capacity corev1.ResourceList
	// LeaseDuration is the lease's TTL (default 40 s); it is renewed every
	// quarter of it.
	LeaseDuration time.Duration
	// DaemonPort is the agent server's port, reported as
	// status.daemonEndpoints.kubeletEndpoint (0: the agent serves none).
	DaemonPort int32
	// NotReady, when set, is reported as the message of a Ready=False
	// condition: the agent registers that way while its runtime starts,
	// so nothing is scheduled to it before it can run pods.
	NotReady string
	Version  string
	Logger   *slog.Logger
}

// Register creates the Node or refreshes its status and returns it (with
// the pod CIDR the server assigned).
func Register(ctx context.Context, c kubernetes.Interface, cfg Config) (*corev1.Node, error) {
	nodes := c.CoreV1().Nodes()
	n, err := nodes.Get(ctx, cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		n = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: cfg.NodeName, Labels: defaultLabels(cfg)}}
		if n, err = nodes.Create(ctx, n, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("register node %s: %w", cfg.NodeName, err)
		}
		if apierrors.IsAlreadyExists(err) {
			if n, err = nodes.Get(ctx, cfg.NodeName, metav1.GetOptions{}); err != nil {
				return nil, err
			}
		}
	} else if err != nil {
		return nil, fmt.Errorf("read node %s: %w", cfg.NodeName, err)
	}
	n.Status = status(cfg, n.Status)
	out, err := nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("report node %s status: %w", cfg.NodeName, err)
	}
	return out, nil
}

func defaultLabels(cfg Config) map[string]string {
	l := map[string]string{
		"kubernetes.io/hostname": cfg.NodeName,
		"kubernetes.io/os":       runtime.GOOS,
		"kubernetes.io/arch":     runtime.GOARCH,
	}
	for k, v := range cfg.Labels {
		l[k] = v
	}
	return l
}

func status(cfg Config, prev corev1.NodeStatus) corev1.NodeStatus {
	capacity := cfg.Capacity
	if capacity == nil {
		capacity = corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
			corev1.ResourcePods:   *resource.NewQuantity(110, resource.DecimalSI),
			corev1.ResourceMemory: memory(),
		}
	}
	now := metav1.Now()
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		Message: "weir agent is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now}
	if cfg.NotReady != "" {
		ready.Status, ready.Reason, ready.Message = corev1.ConditionFalse, "KubeletNotReady", cfg.NotReady
	}
	for _, c := range prev.Conditions {
		if c.Type == corev1.NodeReady && c.Status == ready.Status {
			ready.LastTransitionTime = c.LastTransitionTime
		}
	}
	st := corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		Conditions: []corev1.NodeCondition{ready},
		Addresses:  []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: cfg.NodeName}},
		NodeInfo: corev1.NodeSystemInfo{KubeletVersion: cfg.Version, OperatingSystem: runtime.GOOS, Architecture: runtime.GOARCH,
			ContainerRuntimeVersion: "containerd"},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: cfg.DaemonPort}},
	}
	if cfg.NodeIP.IsValid() {
		st.Addresses = append([]corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: cfg.NodeIP.String()}}, st.Addresses...)
	}
	return st
}

// Run renews the node's Lease until ctx ends.
func Run(ctx context.Context, c kubernetes.Interface, cfg Config) error {
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = 40 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t := time.NewTicker(cfg.LeaseDuration / 4)
	defer t.Stop()
	for {
		if err := renew(ctx, c, cfg); err != nil && ctx.Err() == nil {
			cfg.Logger.Warn("renew node lease", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func renew(ctx context.Context, c kubernetes.Interface, cfg Config) error {
	leases := c.CoordinationV1().Leases(LeaseNamespace)
	secs := int32(cfg.LeaseDuration / time.Second)
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(ctx, cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: cfg.NodeName},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &cfg.NodeName, LeaseDurationSeconds: &secs,
				AcquireTime: &now, RenewTime: &now},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &cfg.NodeName, &secs, &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

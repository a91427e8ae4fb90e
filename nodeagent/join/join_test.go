package join_test

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"weir.dev/weir/nodeagent/join"
	"weir.dev/weir/test/cluster"
)

func TestJoinGivesANodeIdentityAndReusesIt(t *testing.T) {
	s := cluster.Start(t)
	dir := t.TempDir()
	cfg := join.Config{Server: s.URL, CAData: s.CA.CertPEM(), BootstrapToken: s.BootstrapToken, NodeName: "n1", Dir: dir}
	rc, err := join.Join(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	// It acts as node n1: its own Node is allowed, another's is not.
	if _, err := c.CoreV1().Nodes().Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("register own node: %v", err)
	}
	if _, err := c.CoreV1().Nodes().Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("register another node: got %v, want Forbidden", err)
	}
	st, err := os.Stat(filepath.Join(dir, join.KeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("node key: %v mode %v", err, st.Mode())
	}
	// A restart reuses the stored certificate, even without the token.
	cfg.BootstrapToken = ""
	rc2, err := join.Join(t.Context(), cfg)
	if err != nil {
		t.Fatalf("rejoin from disk: %v", err)
	}
	if string(rc2.CertData) != string(rc.CertData) {
		t.Fatalf("rejoin issued a new certificate instead of reusing the stored one")
	}
	// Without a token and without a stored certificate, joining fails clearly.
	cfg.Dir = t.TempDir()
	if _, err := join.Join(t.Context(), cfg); err == nil {
		t.Fatal("join without token or certificate succeeded")
	}
}

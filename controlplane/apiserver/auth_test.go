package apiserver_test

import (
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"weir.dev/weir/controlplane/auth"
	"weir.dev/weir/test/cluster"
)

func TestNoCredentialsIs401(t *testing.T) {
	s := startAPI(t)
	for _, path := range []string{"/api/v1/namespaces/default/pods", "/apis", "/api/v1/nodes"} {
		resp, err := s.HTTPClient().Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials: %d, want 401", path, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/api/v1/namespaces/default/pods", nil)
	req.Header.Set("Authorization", "Bearer not-a-token")
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", resp.StatusCode)
	}
}

func TestAdminKubeconfigIsPrivateAndWorks(t *testing.T) {
	s := startAPI(t)
	st, err := os.Stat(s.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("admin kubeconfig mode %o, want 600", st.Mode().Perm())
	}
	if filepath.Base(s.Kubeconfig) != "admin.kubeconfig" {
		t.Fatalf("kubeconfig at %s", s.Kubeconfig)
	}
}

// joinNode requests a node client certificate with the bootstrap token, as
// an agent does, and returns a clientset that authenticates with it.
func joinNode(t *testing.T, s *cluster.Server, node string) kubernetes.Interface {
	t.Helper()
	boot, err := kubernetes.NewForConfig(&rest.Config{Host: s.URL, BearerToken: s.BootstrapToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: s.CA.CertPEM()}, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	if err != nil {
		t.Fatal(err)
	}
	csrPEM, keyPEM, err := auth.NewNodeCSR(node)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := boot.CertificatesV1().CertificateSigningRequests().Create(t.Context(), &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "node-csr-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: csrPEM, SignerName: certificatesv1.KubeAPIServerClientKubeletSignerName,
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("bootstrap CSR: %v", err)
	}
	if len(csr.Status.Certificate) == 0 {
		t.Fatalf("CSR was not signed: %+v", csr.Status)
	}
	if _, err := tls.X509KeyPair(csr.Status.Certificate, keyPEM); err != nil {
		t.Fatalf("issued certificate does not match the key: %v", err)
	}
	c, err := kubernetes.NewForConfig(&rest.Config{Host: s.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"},
		TLSClientConfig: rest.TLSClientConfig{CAData: s.CA.CertPEM(), CertData: csr.Status.Certificate, KeyData: keyPEM}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNodeAuthorization(t *testing.T) {
	s := startAPI(t)
	ctx := t.Context()
	admin := s.Client(t)
	n1 := joinNode(t, s, "n1")

	// Objects the admin prepares: a pod on n1 that uses a secret, a pod on
	// n2, and a secret nobody on n1 uses.
	mk := func(name, node, secret string) {
		p := pod(name, nil)
		p.Spec.NodeName = node
		if secret != "" {
			p.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}}
		}
		if _, err := admin.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"used", "unused", "pullcred"} {
		if _, err := admin.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mk("on-n1", "n1", "used")
	mk("on-n2", "n2", "")
	// A pod on n1 that names a secret only in imagePullSecrets.
	pp := pod("pulls-on-n1", nil)
	pp.Spec.NodeName = "n1"
	pp.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pullcred"}}
	if _, err := admin.CoreV1().Pods("default").Create(ctx, pp, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var myNode *corev1.Node
	var myPod *corev1.Pod
	cases := []struct {
		name    string
		allowed bool
		do      func() error
	}{
		{"register own Node", true, func() (err error) {
			myNode, err = n1.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{})
			return err
		}},
		{"register another Node", false, func() error {
			_, err := n1.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n3"}}, metav1.CreateOptions{})
			return err
		}},
		{"update own nodes/status", true, func() error {
			n := myNode.DeepCopy()
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
			_, err := n1.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
			return err
		}},
		{"update another node's status", false, func() error {
			n, err := admin.CoreV1().Nodes().Get(ctx, "n2", metav1.GetOptions{})
			if err != nil {
				return err
			}
			_, err = n1.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
			return err
		}},
		{"own Lease", true, func() error {
			_, err := n1.CoordinationV1().Leases("kube-node-lease").Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{})
			return err
		}},
		{"another node's Lease", false, func() error {
			_, err := n1.CoordinationV1().Leases("kube-node-lease").Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}, metav1.CreateOptions{})
			return err
		}},
		{"read pods", true, func() (err error) {
			myPod, err = n1.CoreV1().Pods("default").Get(ctx, "on-n1", metav1.GetOptions{})
			if err == nil {
				_, err = n1.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=n1"})
			}
			return err
		}},
		{"status of own pod", true, func() error {
			p := myPod.DeepCopy()
			p.Status.Phase = corev1.PodRunning
			_, err := n1.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{})
			return err
		}},
		{"status of another node's pod", false, func() error {
			p, err := admin.CoreV1().Pods("default").Get(ctx, "on-n2", metav1.GetOptions{})
			if err != nil {
				return err
			}
			p.Status.Phase = corev1.PodRunning
			_, err = n1.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{})
			return err
		}},
		{"delete another node's pod", false, func() error {
			return n1.CoreV1().Pods("default").Delete(ctx, "on-n2", metav1.DeleteOptions{})
		}},
		{"create a pod", false, func() error {
			_, err := n1.CoreV1().Pods("default").Create(ctx, pod("rogue", nil), metav1.CreateOptions{})
			return err
		}},
		{"write a Service", false, func() error {
			_, err := n1.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s"},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
			return err
		}},
		{"read services", true, func() error {
			_, err := n1.CoreV1().Services("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"get a secret its pod uses", true, func() error {
			_, err := n1.CoreV1().Secrets("default").Get(ctx, "used", metav1.GetOptions{})
			return err
		}},
		{"get an image pull secret its pod names", true, func() error {
			_, err := n1.CoreV1().Secrets("default").Get(ctx, "pullcred", metav1.GetOptions{})
			return err
		}},
		{"get a secret no pod of it uses", false, func() error {
			_, err := n1.CoreV1().Secrets("default").Get(ctx, "unused", metav1.GetOptions{})
			return err
		}},
		{"list secrets", false, func() error {
			_, err := n1.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"create an Event", true, func() error {
			_, err := n1.CoreV1().Events("default").Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "e-"},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "on-n1"}, Reason: "Started", Type: "Normal"}, metav1.CreateOptions{})
			return err
		}},
		{"final delete of own pod", true, func() error {
			zero := int64(0)
			return n1.CoreV1().Pods("default").Delete(ctx, "on-n1", metav1.DeleteOptions{GracePeriodSeconds: &zero})
		}},
	}
	if len(cases) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			switch {
			case tc.allowed && err != nil:
				t.Fatalf("want allowed, got %v", err)
			case !tc.allowed && !apierrors.IsForbidden(err):
				t.Fatalf("want 403 Forbidden, got %v", err)
			}
		})
	}

	t.Run("bootstrap token may only request certificates", func(t *testing.T) {
		boot, _ := kubernetes.NewForConfig(&rest.Config{Host: s.URL, BearerToken: s.BootstrapToken,
			TLSClientConfig: rest.TLSClientConfig{CAData: s.CA.CertPEM()}, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
		if _, err := boot.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Fatalf("bootstrapper listing pods: got %v, want Forbidden", err)
		}
	})
}

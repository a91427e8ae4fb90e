// Package join gives a node its identity: with the cluster's bootstrap
// token it requests a client certificate for system:node:<name> through a
// CertificateSigningRequest (the server approves and signs node requests at
// once) and keeps the certificate and key under the node's data dir, so a
// restarted agent reuses them. It owns those files only.
package join

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"weir.dev/weir/controlplane/auth"
)

// Config says where the cluster is and who the node is.
type Config struct {
	Server         string // https://host:port
	CAData         []byte
	BootstrapToken string
	NodeName       string
	// Dir holds node.crt and node.key (created 0700).
	Dir string
}

// Files under Config.Dir.
const (
	CertFile = "node.crt"
	KeyFile  = "node.key"
)

func (c *Config) restConfig() *rest.Config {
	return &rest.Config{
		Host:            c.Server,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CAData},
		ContentConfig:   rest.ContentConfig{ContentType: "application/json"},
		Timeout:         30 * time.Second,
		// The kubelet's defaults (kubeAPIQPS 50, kubeAPIBurst 100), not
		// client-go's 5/10: a node starting 100 pods writes a few statuses
		// and events for each, and at 5 QPS that alone is a minute.
		QPS:   50,
		Burst: 100,
	}
}

// Join returns a client configuration that authenticates as the node,
// requesting a certificate only when no valid one is on disk.
func Join(ctx context.Context, c Config) (*rest.Config, error) {
	if c.NodeName == "" || c.Server == "" {
		return nil, errors.New("join: node name and server are required")
	}
	certPath, keyPath := filepath.Join(c.Dir, CertFile), filepath.Join(c.Dir, KeyFile)
	if certPEM, keyPEM, ok := load(certPath, keyPath, c.CAData); ok {
		return c.withCert(certPEM, keyPEM), nil
	}
	if c.BootstrapToken == "" {
		return nil, errors.New("join: no valid node certificate on disk and no bootstrap token")
	}
	csrPEM, keyPEM, err := auth.NewNodeCSR(c.NodeName)
	if err != nil {
		return nil, fmt.Errorf("make node csr: %w", err)
	}
	boot := c.restConfig()
	boot.BearerToken = c.BootstrapToken
	cs, err := kubernetes.NewForConfig(boot)
	if err != nil {
		return nil, err
	}
	csr, err := cs.CertificatesV1().CertificateSigningRequests().Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "node-csr-" + c.NodeName + "-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: csrPEM, SignerName: certificatesv1.KubeAPIServerClientKubeletSignerName,
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("request node certificate: %w", err)
	}
	// The server signs node requests synchronously; an admin-approved flow
	// would show up here too, so wait briefly for the certificate.
	deadline := time.Now().Add(30 * time.Second)
	for len(csr.Status.Certificate) == 0 {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("node certificate request %s was not signed within 30 s", csr.Name)
		}
		time.Sleep(200 * time.Millisecond)
		if csr, err = cs.CertificatesV1().CertificateSigningRequests().Get(ctx, csr.Name, metav1.GetOptions{}); err != nil {
			return nil, fmt.Errorf("read node certificate request: %w", err)
		}
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create node identity dir: %w", err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("write node key: %w", err)
	}
	if err := os.WriteFile(certPath, csr.Status.Certificate, 0o644); err != nil {
		return nil, fmt.Errorf("write node certificate: %w", err)
	}
	return c.withCert(csr.Status.Certificate, keyPEM), nil
}

func (c *Config) withCert(certPEM, keyPEM []byte) *rest.Config {
	rc := c.restConfig()
	rc.TLSClientConfig.CertData, rc.TLSClientConfig.KeyData = certPEM, keyPEM
	return rc
}

// load returns the stored pair if it parses, chains to the CA and is not
// about to expire.
func load(certPath, keyPath string, caPEM []byte) ([]byte, []byte, bool) {
	certPEM, err1 := os.ReadFile(certPath)
	keyPEM, err2 := os.ReadFile(keyPath)
	if err1 != nil || err2 != nil {
		return nil, nil, false
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, false
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || time.Until(leaf.NotAfter) < 24*time.Hour {
		return nil, nil, false
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, nil, false
	}
	return certPEM, keyPEM, true
}

// Serving-certificate files under Config.Dir.
const (
	ServingCertFile = "serving.crt"
	ServingKeyFile  = "serving.key"
)

// ServingCert returns the agent's serving certificate for ips, requesting
// one through a kubernetes.io/kubelet-serving CSR (with the node's own
// client c; the server approves a node's request for its own addresses)
// unless a valid one for exactly those addresses is on disk. The Node must
// already report ips, since the server checks the request against it.
func ServingCert(ctx context.Context, c kubernetes.Interface, nodeName string, ips []net.IP, caPEM []byte, dir string) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, ServingCertFile), filepath.Join(dir, ServingKeyFile)
	if pair, ok := loadServing(certPath, keyPath, caPEM, nodeName, ips); ok {
		return pair, nil
	}
	csrPEM, keyPEM, err := auth.NewNodeServingCSR(nodeName, ips)
	if err != nil {
		return tls.Certificate{}, err
	}
	csrs := c.CertificatesV1().CertificateSigningRequests()
	csr, err := csrs.Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "node-serving-" + nodeName + "-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: csrPEM, SignerName: certificatesv1.KubeletServingSignerName,
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("request serving certificate: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(csr.Status.Certificate) == 0 {
		if time.Now().After(deadline) {
			return tls.Certificate{}, fmt.Errorf("serving certificate request %s was not signed within 30 s", csr.Name)
		}
		time.Sleep(200 * time.Millisecond)
		if csr, err = csrs.Get(ctx, csr.Name, metav1.GetOptions{}); err != nil {
			return tls.Certificate{}, fmt.Errorf("read serving certificate request: %w", err)
		}
	}
	pair, err := tls.X509KeyPair(csr.Status.Certificate, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("serving certificate: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("create node identity dir: %w", err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("write serving key: %w", err)
	}
	if err := os.WriteFile(certPath, csr.Status.Certificate, 0o644); err != nil {
		return tls.Certificate{}, fmt.Errorf("write serving certificate: %w", err)
	}
	return pair, nil
}

// loadServing returns the stored serving pair if it chains to the CA, is
// not about to expire and names exactly nodeName and ips.
func loadServing(certPath, keyPath string, caPEM []byte, nodeName string, ips []net.IP) (tls.Certificate, bool) {
	certPEM, err1 := os.ReadFile(certPath)
	keyPEM, err2 := os.ReadFile(keyPath)
	if err1 != nil || err2 != nil {
		return tls.Certificate{}, false
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, false
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || time.Until(leaf.NotAfter) < 24*time.Hour {
		return tls.Certificate{}, false
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return tls.Certificate{}, false
	}
	if len(leaf.IPAddresses) != len(ips) || !slices.Equal(leaf.DNSNames, []string{nodeName}) {
		return tls.Certificate{}, false
	}
	for i := range ips {
		if !leaf.IPAddresses[i].Equal(ips[i]) {
			return tls.Certificate{}, false
		}
	}
	return pair, true
}

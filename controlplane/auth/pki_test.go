package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatalf("LoadOrCreateCA: %v", err)
	}
	return ca
}

func mustParseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return cert
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestLoadOrCreateCAPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki") // not there yet: LoadOrCreateCA makes it
	first, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatalf("first LoadOrCreateCA: %v", err)
	}
	second, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatalf("second LoadOrCreateCA: %v", err)
	}
	if !bytes.Equal(first.CertPEM(), second.CertPEM()) {
		t.Error("second start made a new CA instead of loading the first")
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, first.CertPEM()) {
		t.Error("ca.crt on disk differs from CertPEM")
	}
	for file, want := range map[string]os.FileMode{CAKeyFile: 0o600, CACertFile: 0o644} {
		if got := fileMode(t, filepath.Join(dir, file)); got != want {
			t.Errorf("%s mode = %o, want %o", file, got, want)
		}
	}
	if got := fileMode(t, dir); got != 0o700 {
		t.Errorf("dir mode = %o, want 700", got)
	}

	cert := first.Certificate()
	if cert.Subject.CommonName != "weir-ca" || !cert.IsCA {
		t.Errorf("CA subject %q IsCA=%v, want weir-ca and a CA", cert.Subject.CommonName, cert.IsCA)
	}
	if _, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("CA key is %T, want ECDSA", cert.PublicKey)
	}
	if life := cert.NotAfter.Sub(cert.NotBefore); life < 9*365*24*time.Hour {
		t.Errorf("CA lifetime %v, want about ten years", life)
	}
	// A certificate issued by the first instance verifies against the second.
	certPEM, _, err := first.IssueClient("someone", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mustParseCert(t, certPEM).Verify(x509.VerifyOptions{
		Roots: second.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		t.Errorf("certificate from the first start does not verify after a restart: %v", err)
	}
}

func TestLoadOrCreateCAFiles(t *testing.T) {
	other := newTestCA(t)
	otherKey, err := encodeKey(other.key)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		files   map[string]string // written before LoadOrCreateCA
		wantErr string            // "" means success
	}{
		{name: "empty dir creates", files: nil},
		{name: "lone key from an interrupted first start is replaced", files: map[string]string{CAKeyFile: "half written"}},
		{name: "lone cert", files: map[string]string{CACertFile: string(other.CertPEM())}, wantErr: "does not"},
		{name: "corrupt cert", files: map[string]string{CACertFile: "junk", CAKeyFile: string(otherKey)}, wantErr: "CERTIFICATE"},
		{name: "corrupt key", files: map[string]string{CACertFile: string(other.CertPEM()), CAKeyFile: "junk"}, wantErr: "private key"},
		{name: "key of another CA", files: map[string]string{CACertFile: string(other.CertPEM()), CAKeyFile: string(mustNewKeyPEM(t))}, wantErr: "does not match"},
		{name: "existing pair loads", files: map[string]string{CACertFile: string(other.CertPEM()), CAKeyFile: string(otherKey)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			ca, err := LoadOrCreateCA(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LoadOrCreateCA error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadOrCreateCA: %v", err)
			}
			if _, err := LoadOrCreateCA(dir); err != nil {
				t.Errorf("reload: %v", err)
			}
			if _, ok := tc.files[CACertFile]; ok && !bytes.Equal(ca.CertPEM(), other.CertPEM()) {
				t.Error("an existing CA was replaced")
			}
		})
	}
}

func mustNewKeyPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return keyPEM
}

func TestIssueServing(t *testing.T) {
	ca := newTestCA(t)
	hosts := []string{"10.99.0.1", "weir.example", "Node-A", "fd00::1", "[fd00::2]", "10.99.0.1"}
	cert, certPEM, keyPEM, err := ca.IssueServing(hosts)
	if err != nil {
		t.Fatalf("IssueServing: %v", err)
	}
	if cert.Leaf == nil || len(certPEM) == 0 || len(keyPEM) == 0 {
		t.Fatal("IssueServing returned an incomplete certificate")
	}
	leaf := mustParseCert(t, certPEM)
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Errorf("ExtKeyUsage = %v, want server auth", leaf.ExtKeyUsage)
	}
	if n := len(leaf.IPAddresses); n != 5 {
		t.Errorf("IP SANs %v, want 5 without duplicates", leaf.IPAddresses)
	}

	tests := []struct {
		host string
		ok   bool
	}{
		{"localhost", true},
		{"127.0.0.1", true},
		{"::1", true},
		{"10.99.0.1", true},
		{"weir.example", true},
		{"node-a", true},
		{"fd00::1", true},
		{"fd00::2", true},
		{"10.99.0.2", false},
		{"other.example", false},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			_, err := leaf.Verify(x509.VerifyOptions{
				DNSName:   tc.host,
				Roots:     ca.Pool(),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if (err == nil) != tc.ok {
				t.Errorf("Verify for %q: err = %v, want ok=%v", tc.host, err, tc.ok)
			}
		})
	}

	if ip := net.ParseIP("10.99.0.1"); !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) || slices.Contains(leaf.DNSNames, "10.99.0.1") {
		t.Errorf("10.99.0.1 should be an IP SAN only; IPs %v, DNS %v", leaf.IPAddresses, leaf.DNSNames)
	}
	for _, bad := range [][]string{{""}, {"http://x"}, {"a b"}} {
		if _, _, _, err := ca.IssueServing(bad); err == nil {
			t.Errorf("IssueServing(%q) succeeded, want an error", bad)
		}
	}
}

func TestIssueClient(t *testing.T) {
	ca := newTestCA(t)
	certPEM, keyPEM, err := ca.IssueClient("admin", []string{MastersGroup})
	if err != nil {
		t.Fatalf("IssueClient: %v", err)
	}
	cert := mustParseCert(t, certPEM)
	if cert.Subject.CommonName != "admin" || !slices.Equal(cert.Subject.Organization, []string{MastersGroup}) {
		t.Errorf("subject = %v", cert.Subject)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify for client auth: %v", err)
	}
	if _, err := parseKeyPEM(keyPEM); err != nil {
		t.Errorf("key: %v", err)
	}
	if _, _, err := ca.IssueClient("", nil); err == nil {
		t.Error("IssueClient with an empty CN succeeded")
	}
}

// makeCSR builds a PEM CSR with an arbitrary subject and SANs, for the
// requests NewNodeCSR would never make.
func makeCSR(t *testing.T, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestSignCSR(t *testing.T) {
	ca := newTestCA(t)
	nodeCSR, nodeKeyPEM, err := NewNodeCSR("n1")
	if err != nil {
		t.Fatalf("NewNodeCSR: %v", err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	weakKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	nodeSubject := pkix.Name{CommonName: "system:node:n1", Organization: []string{NodesGroup}}

	// Swap one node name for another of the same length inside the signed
	// bytes: the DER stays well-formed, only the signature no longer fits.
	block, _ := pem.Decode(nodeCSR)
	tamperedDER := bytes.Replace(block.Bytes, []byte("system:node:n1"), []byte("system:node:n2"), 1)
	if bytes.Equal(tamperedDER, block.Bytes) {
		t.Fatal("tampering did not change the CSR")
	}
	tampered := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tamperedDER})

	tests := []struct {
		name     string
		csr      []byte
		wantCN   string
		wantOrgs []string
		wantErr  string // "" means the CSR is signed
	}{
		{name: "node csr", csr: nodeCSR, wantCN: "system:node:n1", wantOrgs: []string{NodesGroup}},
		{name: "wrong cn", csr: nodeCSR, wantCN: "system:node:n2", wantOrgs: []string{NodesGroup}, wantErr: "common name"},
		{name: "wrong expected org", csr: nodeCSR, wantCN: "system:node:n1", wantOrgs: []string{MastersGroup}, wantErr: "organizations"},
		{name: "asks for masters", wantCN: "system:node:n1", wantOrgs: []string{NodesGroup}, wantErr: "organizations",
			csr: makeCSR(t, ecKey, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:node:n1", Organization: []string{NodesGroup, MastersGroup}}})},
		{name: "no org", wantCN: "system:node:n1", wantOrgs: []string{NodesGroup}, wantErr: "organizations",
			csr: makeCSR(t, ecKey, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:node:n1"}})},
		{name: "extra subject attribute", wantCN: "system:node:n1", wantOrgs: []string{NodesGroup}, wantErr: "unexpected subject attribute",
			csr: makeCSR(t, ecKey, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:node:n1", Organization: []string{NodesGroup}, OrganizationalUnit: []string{"x"}}})},
		{name: "dns san", wantCN: "system:node:n1", wantOrgs: []string{NodesGroup}, wantErr: "subject alternative names",
			csr: makeCSR(t, ecKey, &x509.CertificateRequest{Subject: nodeSubject, DNSNames: []string{"kubernetes.default"}})},
		{name: "ip san", wantCN: "system:node:n1", wantOrgs: []string{NodesGroup}, wantErr: "subject alternative names",
			csr: makeCSR(t, ecKey, &x509.CertificateRequest{Subject: nodeSubject, IPAddresses: []net.IP{net.ParseIP("10.0.0.1")}})},
		{name: "email san", wantCN: "system:node:n1", wantOrgs: []string{NodesGroup}, wantErr: "subject alternative names",
			csr: makeCSR(t, ecKey, &x509.CertificateRequest{Subject: nodeSubject, EmailAddresses: []string{"a@b.c"}})},
		{name: "weak rsa key", wantCN: "system:node:n1", wantOrgs: []string{NodesGroup}, wantErr: "rsa key",
			csr: makeCSR(t, weakKey, &x509.CertificateRequest{Subject: nodeSubject})},
		{name: "tampered", csr: tampered, wantCN: "system:node:n2", wantOrgs: []string{NodesGroup}, wantErr: "signature"},
		{name: "not pem", csr: []byte("junk"), wantCN: "system:node:n1", wantOrgs: []string{NodesGroup}, wantErr: "PEM"},
		{name: "a certificate instead", csr: ca.CertPEM(), wantCN: "system:node:n1", wantOrgs: []string{NodesGroup}, wantErr: "PEM"},
		{name: "trailing data", csr: append(slices.Clone(nodeCSR), ca.CertPEM()...), wantCN: "system:node:n1", wantOrgs: []string{NodesGroup}, wantErr: "trailing"},
		{name: "empty expected cn", csr: nodeCSR, wantCN: "", wantOrgs: []string{NodesGroup}, wantErr: "empty"},
	}
	if len(tests) == 0 {
		t.Fatal("no test cases")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			certPEM, err := ca.SignCSR(tc.csr, tc.wantCN, tc.wantOrgs)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("SignCSR error = %v, want one containing %q", err, tc.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "sign csr: ") {
					t.Errorf("error %q lacks the sign csr prefix", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("SignCSR: %v", err)
			}
			cert := mustParseCert(t, certPEM)
			if diff := cmp.Diff(nodeSubject.String(), cert.Subject.String()); diff != "" {
				t.Errorf("subject (-want +got):\n%s", diff)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("signed certificate does not verify for client auth: %v", err)
			}
			if slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || cert.IsCA {
				t.Errorf("client certificate may also serve or sign: usages %v, IsCA %v", cert.ExtKeyUsage, cert.IsCA)
			}
			if life := cert.NotAfter.Sub(cert.NotBefore); life < 364*24*time.Hour || life > 366*24*time.Hour {
				t.Errorf("lifetime %v, want about a year", life)
			}
			key, err := parseKeyPEM(nodeKeyPEM)
			if err != nil {
				t.Fatal(err)
			}
			if !key.Public().(*ecdsa.PublicKey).Equal(cert.PublicKey) {
				t.Error("certificate is not for the CSR's key")
			}
		})
	}
}

func TestSignedCertNeverOutlivesCA(t *testing.T) {
	ca := newTestCA(t)
	ca.now = func() time.Time { return ca.cert.NotAfter.Add(-30 * 24 * time.Hour) }
	csr, _, err := NewNodeCSR("n1")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignCSR(csr, "system:node:n1", []string{NodesGroup})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustParseCert(t, certPEM).NotAfter; !got.Equal(ca.cert.NotAfter) {
		t.Errorf("NotAfter = %v, want the CA's %v", got, ca.cert.NotAfter)
	}
}

func TestNewNodeCSR(t *testing.T) {
	csrPEM, keyPEM, err := NewNodeCSR("worker-1")
	if err != nil {
		t.Fatalf("NewNodeCSR: %v", err)
	}
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("CSR PEM block %v", block)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if csr.Subject.CommonName != "system:node:worker-1" || !slices.Equal(csr.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("subject = %v", csr.Subject)
	}
	if _, err := parseKeyPEM(keyPEM); err != nil {
		t.Errorf("key: %v", err)
	}
	for _, bad := range []string{"", "a:b", "a/b"} {
		if _, _, err := NewNodeCSR(bad); err == nil {
			t.Errorf("NewNodeCSR(%q) succeeded", bad)
		}
	}
}

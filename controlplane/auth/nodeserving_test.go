package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"strings"
	"testing"
)

func TestSignNodeServingCSR(t *testing.T) {
	ca := newTestCA(t)
	nodeIP := net.ParseIP("10.200.0.2")
	own, _, err := NewNodeServingCSR("n1", []net.IP{nodeIP})
	if err != nil {
		t.Fatal(err)
	}
	csr := func(cn string, orgs, dns []string, ips ...string) []byte {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: orgs}, DNSNames: dns}
		for _, ip := range ips {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}
	for _, tc := range []struct {
		name    string
		req     []byte
		wantErr string
	}{
		{name: "own name and address", req: own},
		{name: "another node's name", req: csr("system:node:n2", []string{NodesGroup}, []string{"n1"}, "10.200.0.2"), wantErr: `want "system:node:n1"`},
		{name: "an address the node does not report", req: csr("system:node:n1", []string{NodesGroup}, []string{"n1"}, "10.200.0.9"), wantErr: "10.200.0.9 is not an address of node"},
		{name: "a foreign dns name", req: csr("system:node:n1", []string{NodesGroup}, []string{"kubernetes.default"}, "10.200.0.2"), wantErr: `"kubernetes.default" is not a name of node`},
		{name: "masters group", req: csr("system:node:n1", []string{MastersGroup}, []string{"n1"}, "10.200.0.2"), wantErr: "subject organizations"},
		{name: "no names", req: csr("system:node:n1", []string{NodesGroup}, nil), wantErr: "no subject alternative names"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certPEM, err := ca.SignNodeServingCSR(tc.req, "n1", []net.IP{nodeIP}, []string{"n1"})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cert := mustParseCert(t, certPEM)
			if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				t.Fatalf("verify as a server certificate: %v", err)
			}
			if err := cert.VerifyHostname("10.200.0.2"); err != nil {
				t.Fatal(err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
				t.Fatal("a serving certificate must not authenticate a client")
			}
		})
	}
}

package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
)

// KubeletClientUser is the identity the API server presents to node agents
// when it proxies pods/log and pods/exec (kube-apiserver's
// --kubelet-client-certificate). It is in no group, so on the API itself
// it may do nothing; an agent admits it and system:masters only.
const KubeletClientUser = "system:kube-apiserver-kubelet-client"

// NewNodeServingCSR generates an ECDSA P-256 key and a request for the
// serving certificate of node nodeName's agent, valid for ips and the node
// name as a DNS name (kubelet-serving's subject: CN system:node:<name>, O
// system:nodes).
func NewNodeServingCSR(nodeName string, ips []net.IP) (csrPEM, keyPEM []byte, err error) {
	if nodeName == "" || strings.ContainsAny(nodeName, ": /") {
		return nil, nil, fmt.Errorf("new node serving csr: invalid node name %q", nodeName)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("new node serving csr: %w", err)
	}
	tmpl := &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: NodeUserPrefix + nodeName, Organization: []string{NodesGroup}},
		DNSNames:    []string{nodeName},
		IPAddresses: ips,
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, nil, fmt.Errorf("new node serving csr: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("new node serving csr: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCSR, Bytes: der}), keyPEM, nil
}

// SignNodeServingCSR signs a node agent's serving certificate request
// (signer kubernetes.io/kubelet-serving) for node: the subject must be
// system:node:<node> in system:nodes, every IP SAN must be one of
// allowedIPs (the addresses the Node reports) and every DNS SAN one of
// allowedNames. Anything else is refused, not trimmed.
func (ca *CA) SignNodeServingCSR(csrPEM []byte, node string, allowedIPs []net.IP, allowedNames []string) ([]byte, error) {
	block, rest := pem.Decode(csrPEM)
	if block == nil || block.Type != pemCSR {
		return nil, fmt.Errorf("sign serving csr: no PEM %q block", pemCSR)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("sign serving csr: trailing data after the request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("sign serving csr: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("sign serving csr: check signature: %w", err)
	}
	if err := checkCSRSubject(csr, NodeUserPrefix+node, []string{NodesGroup}); err != nil {
		return nil, fmt.Errorf("sign serving csr: %w", err)
	}
	if len(csr.EmailAddresses)+len(csr.URIs) != 0 {
		return nil, errors.New("sign serving csr: only DNS and IP subject alternative names are allowed")
	}
	if len(csr.IPAddresses)+len(csr.DNSNames) == 0 {
		return nil, errors.New("sign serving csr: no subject alternative names")
	}
	for _, ip := range csr.IPAddresses {
		if !slices.ContainsFunc(allowedIPs, ip.Equal) {
			return nil, fmt.Errorf("sign serving csr: ip address %s is not an address of node %q", ip, node)
		}
	}
	for _, n := range csr.DNSNames {
		if !slices.Contains(allowedNames, n) {
			return nil, fmt.Errorf("sign serving csr: dns name %q is not a name of node %q", n, node)
		}
	}
	if err := checkPublicKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("sign serving csr: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: NodeUserPrefix + node, Organization: []string{NodesGroup}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    slices.Clone(csr.DNSNames),
		IPAddresses: slices.Clone(csr.IPAddresses),
	}
	der, err := ca.sign(tmpl, csr.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("sign serving csr: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der}), nil
}

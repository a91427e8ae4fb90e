package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File names inside the directory given to LoadOrCreateCA.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

const (
	caCommonName      = "weir-ca"
	servingCommonName = "weir-apiserver"
	caValidity        = 10 * 365 * 24 * time.Hour
	leafValidity      = 365 * 24 * time.Hour
	// backdate keeps a certificate valid on a peer whose clock is a little
	// behind ours (Kubernetes' signer backdates by the same amount).
	backdate = 5 * time.Minute

	pemCertificate = "CERTIFICATE"
	pemPrivateKey  = "PRIVATE KEY"
	pemCSR         = "CERTIFICATE REQUEST"
)

var (
	oidCommonName   = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidOrganization = asn1.ObjectIdentifier{2, 5, 4, 10}
)

// CA is the cluster's certificate authority: it signs the API server's
// serving certificate and the client certificates of nodes and admins.
// A CA is immutable once loaded and safe for concurrent use.
type CA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	pool    *x509.CertPool
	// now is the clock used for validity periods; tests move it.
	now func() time.Time
}

// LoadOrCreateCA loads ca.crt and ca.key from dir, or, when neither exists,
// creates dir (0700), generates an ECDSA P-256 CA valid for ten years and
// writes ca.crt (0644) and ca.key (0600). A lone ca.key is a first start
// that stopped before writing ca.crt (the key is written first), so it is
// replaced; a lone ca.crt is an error because nothing could sign with it.
func LoadOrCreateCA(dir string) (*CA, error) {
	certPath := filepath.Join(dir, CACertFile)
	keyPath := filepath.Join(dir, CAKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		ca, err := parseCA(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("load ca from %s: %w", dir, err)
		}
		return ca, nil
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist):
		return nil, fmt.Errorf("load ca: %w", certErr)
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return nil, fmt.Errorf("load ca: %w", keyErr)
	case certErr == nil:
		return nil, fmt.Errorf("load ca: %s exists but %s does not", certPath, keyPath)
	}

	ca, keyPEM, err := newCA(time.Now())
	if err != nil {
		return nil, fmt.Errorf("create ca: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create ca: %w", err)
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("create ca: %w", err)
	}
	if err := writeFileAtomic(certPath, ca.certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("create ca: %w", err)
	}
	return ca, nil
}

func newCA(now time.Time) (*CA, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: caCommonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// Leaves only: weir has no intermediate CAs.
		MaxPathLen:     0,
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-sign: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	ca, err := parseCA(pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der}), keyPEM)
	if err != nil {
		return nil, nil, err
	}
	return ca, keyPEM, nil
}

func parseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("certificate %q is not a ca", cert.Subject.CommonName)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("ca key does not match ca certificate")
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: cert.Raw}),
		pool:    pool,
		now:     time.Now,
	}, nil
}

// CertPEM returns the CA certificate in PEM form, as clients need it in
// their kubeconfig. The caller may modify the returned slice.
func (ca *CA) CertPEM() []byte { return bytes.Clone(ca.certPEM) }

// Certificate returns the parsed CA certificate; callers must not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Pool returns a new pool holding only the CA certificate, so a caller that
// adds to it does not widen what this package trusts.
func (ca *CA) Pool() *x509.CertPool { return ca.pool.Clone() }

// ServerTLSConfig returns the TLS configuration the API server should use:
// the serving certificate, and client certificates requested and verified
// against the CA but not required, so token users can connect too.
// Authenticator.Authenticate verifies the client certificate again.
func (ca *CA) ServerTLSConfig(serving tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{serving},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    ca.Pool(),
		MinVersion:   tls.VersionTLS12,
	}
}

// IssueServing issues a one-year serving certificate for hosts with a new
// ECDSA P-256 key. Hosts that parse as IP addresses become IP SANs, the rest
// DNS SANs; "localhost", 127.0.0.1 and ::1 are always included so the server
// is reachable over loopback whatever else it listens on.
func (ca *CA) IssueServing(hosts []string) (cert tls.Certificate, certPEM, keyPEM []byte, err error) {
	var ips []net.IP
	var names []string
	for _, h := range append([]string{"localhost", "127.0.0.1", "::1"}, hosts...) {
		h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(h), "["), "]")
		if h == "" {
			return tls.Certificate{}, nil, nil, errors.New("issue serving certificate: empty host")
		}
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
			continue
		}
		if strings.ContainsAny(h, " /:@") {
			return tls.Certificate{}, nil, nil, fmt.Errorf("issue serving certificate: host %q is neither an ip address nor a dns name", h)
		}
		h = strings.ToLower(h)
		if !slices.Contains(names, h) {
			names = append(names, h)
		}
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: servingCommonName},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    names,
		IPAddresses: ips,
	}
	certPEM, keyPEM, err = ca.issueWithNewKey(tmpl)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("issue serving certificate: %w", err)
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("issue serving certificate: %w", err)
	}
	return cert, certPEM, keyPEM, nil
}

// IssueClient issues a one-year client certificate with a new ECDSA P-256
// key. The API server maps cn to the user name and orgs to groups, so
// orgs = ["system:masters"] makes an admin.
func (ca *CA) IssueClient(cn string, orgs []string) (certPEM, keyPEM []byte, err error) {
	if cn == "" {
		return nil, nil, errors.New("issue client certificate: empty common name")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: slices.Clone(orgs)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	certPEM, keyPEM, err = ca.issueWithNewKey(tmpl)
	if err != nil {
		return nil, nil, fmt.Errorf("issue client certificate for %q: %w", cn, err)
	}
	return certPEM, keyPEM, nil
}

// SignCSR signs a PEM "CERTIFICATE REQUEST" into a one-year client
// certificate (PEM) for wantCN in groups wantOrgs. The caller decides
// wantCN and wantOrgs from who is asking (for a node: "system:node:<name>",
// ["system:nodes"]); the request must carry exactly that subject and no
// other subject attributes or SANs, or it is refused rather than trimmed,
// so a client never holds a certificate that differs from what it asked for.
func (ca *CA) SignCSR(csrPEM []byte, wantCN string, wantOrgs []string) ([]byte, error) {
	if wantCN == "" {
		return nil, errors.New("sign csr: empty expected common name")
	}
	block, rest := pem.Decode(csrPEM)
	if block == nil || block.Type != pemCSR {
		return nil, fmt.Errorf("sign csr: no PEM %q block", pemCSR)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("sign csr: trailing data after the request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("sign csr: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("sign csr: check signature: %w", err)
	}
	if err := checkCSRSubject(csr, wantCN, wantOrgs); err != nil {
		return nil, fmt.Errorf("sign csr: %w", err)
	}
	if len(csr.DNSNames)+len(csr.IPAddresses)+len(csr.EmailAddresses)+len(csr.URIs) != 0 {
		return nil, errors.New("sign csr: subject alternative names are not allowed in a client certificate request")
	}
	if err := checkPublicKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("sign csr: %w", err)
	}
	tmpl := &x509.Certificate{
		// Built from what the caller expects, not copied from the request.
		Subject:     pkix.Name{CommonName: wantCN, Organization: slices.Clone(wantOrgs)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := ca.sign(tmpl, csr.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("sign csr: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der}), nil
}

func checkCSRSubject(csr *x509.CertificateRequest, wantCN string, wantOrgs []string) error {
	var cns, orgs []string
	for _, atv := range csr.Subject.Names {
		s, ok := atv.Value.(string)
		switch {
		case !ok:
			return fmt.Errorf("subject attribute %v is not a string", atv.Type)
		case atv.Type.Equal(oidCommonName):
			cns = append(cns, s)
		case atv.Type.Equal(oidOrganization):
			orgs = append(orgs, s)
		default:
			return fmt.Errorf("unexpected subject attribute %v", atv.Type)
		}
	}
	if len(cns) != 1 || cns[0] != wantCN {
		return fmt.Errorf("subject common name %q, want %q", strings.Join(cns, ","), wantCN)
	}
	got, want := slices.Sorted(slices.Values(orgs)), slices.Sorted(slices.Values(wantOrgs))
	if !slices.Equal(got, want) {
		return fmt.Errorf("subject organizations %q, want %q", orgs, wantOrgs)
	}
	return nil
}

// checkPublicKey admits the key types and sizes Go's TLS stack uses for
// client certificates; anything weaker is refused.
func checkPublicKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("unsupported ecdsa curve %s", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("rsa key of %d bits, want at least 2048", k.N.BitLen())
		}
		return nil
	case ed25519.PublicKey:
		return nil
	}
	return fmt.Errorf("unsupported public key type %T", pub)
}

// NewNodeCSR generates an ECDSA P-256 key and a certificate request for the
// node identity "system:node:<nodeName>" in group "system:nodes", both PEM.
// The node agent sends the request with its bootstrap token.
func NewNodeCSR(nodeName string) (csrPEM, keyPEM []byte, err error) {
	if nodeName == "" || strings.ContainsAny(nodeName, ": /") {
		return nil, nil, fmt.Errorf("new node csr: invalid node name %q", nodeName)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("new node csr: %w", err)
	}
	tmpl := &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: NodeUserPrefix + nodeName, Organization: []string{NodesGroup}},
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, nil, fmt.Errorf("new node csr: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("new node csr: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCSR, Bytes: der}), keyPEM, nil
}

func (ca *CA) issueWithNewKey(tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := ca.sign(tmpl, key.Public())
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der}), keyPEM, nil
}

// sign fills in serial and validity (one year, never past the CA's own
// expiry, since a chain is only as valid as its root) and signs tmpl.
func (ca *CA) sign(tmpl *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := ca.now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-backdate)
	tmpl.NotAfter = now.Add(leafValidity)
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter
	}
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	return der, nil
}

func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return n, nil
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

func parseCertPEM(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != pemCertificate {
		return nil, fmt.Errorf("no PEM %q block", pemCertificate)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

// parseKeyPEM reads PKCS#8 (what this package writes) and, for keys made by
// other tools, SEC 1 EC and PKCS#1 RSA keys.
func parseKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM private key block")
	}
	var key any
	var err error
	switch block.Type {
	case pemPrivateKey:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q, want a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", key)
	}
	return signer, nil
}

// writeFileAtomic writes data to a temporary file in path's directory and
// renames it over path, so a reader sees the old or the new content, never
// a torn file, and the file has perm from the moment it holds data (a
// pre-existing file with looser permissions is replaced, not reused).
func writeFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600 and umask may not loosen it, but perm
	// may ask for more (0644 for a certificate).
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Make the rename itself durable; a failure here leaves a correct file.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

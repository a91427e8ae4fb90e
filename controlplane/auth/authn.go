package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Well-known user names, prefixes and groups, as in Kubernetes.
const (
	AdminUser           = "admin"
	NodeUserPrefix      = "system:node:"
	BootstrapUserPrefix = "system:bootstrap:"

	MastersGroup       = "system:masters"
	NodesGroup         = "system:nodes"
	BootstrappersGroup = "system:bootstrappers"
	AuthenticatedGroup = "system:authenticated"
)

// User is an authenticated identity: a name and the groups it belongs to.
type User struct {
	Name   string
	Groups []string
}

// InGroup reports whether u belongs to group g.
func (u User) InGroup(g string) bool { return slices.Contains(u.Groups, g) }

// NodeName returns <node> for a node identity, a user named
// "system:node:<node>" in group "system:nodes"; both are required, as in
// Kubernetes' node authorizer, so neither alone makes a node.
func (u User) NodeName() (string, bool) {
	name, ok := strings.CutPrefix(u.Name, NodeUserPrefix)
	if !ok || name == "" || !u.InGroup(NodesGroup) {
		return "", false
	}
	return name, true
}

// Authenticator maps a request's credentials (a client certificate signed
// by the cluster CA, or a bearer token) to a User. It is safe for concurrent
// use; AddToken may run while requests are authenticated.
type Authenticator struct {
	pool *x509.CertPool // nil: client certificates are not accepted
	// now is the clock certificate validity is checked against.
	now func() time.Time

	mu sync.RWMutex
	// tokens is keyed by the SHA-256 of the token, so a lookup's timing
	// depends on the digest rather than on how much of a token matched.
	tokens map[[sha256.Size]byte]tokenEntry
}

type tokenEntry struct {
	token string
	user  User
}

// NewAuthenticator returns an authenticator that accepts client
// certificates issued by ca (none if ca is nil), adminToken as the admin
// (in "system:masters") and bootstrapToken as "system:bootstrap:<id>" (in
// "system:bootstrappers"). An empty token is not accepted at all; a
// non-empty bootstrapToken must have the Kubernetes bootstrap token format.
func NewAuthenticator(ca *CA, adminToken, bootstrapToken string) (*Authenticator, error) {
	a := &Authenticator{now: time.Now, tokens: make(map[[sha256.Size]byte]tokenEntry)}
	if ca != nil {
		a.pool = ca.Pool()
	}
	if adminToken != "" {
		if err := a.AddToken(adminToken, User{Name: AdminUser, Groups: []string{MastersGroup, AuthenticatedGroup}}); err != nil {
			return nil, fmt.Errorf("new authenticator: admin token: %w", err)
		}
	}
	if bootstrapToken != "" {
		id, _, ok := ParseBootstrapToken(bootstrapToken)
		if !ok {
			return nil, errors.New("new authenticator: bootstrap token is not of the form [a-z0-9]{6}.[a-z0-9]{16}")
		}
		u := User{Name: BootstrapUserPrefix + id, Groups: []string{BootstrappersGroup, AuthenticatedGroup}}
		if err := a.AddToken(bootstrapToken, u); err != nil {
			return nil, fmt.Errorf("new authenticator: bootstrap token: %w", err)
		}
	}
	return a, nil
}

// AddToken makes token authenticate as u. It fails for an empty token or
// user name and for a token that is already known, rather than silently
// changing whose token it is.
func (a *Authenticator) AddToken(token string, u User) error {
	if token == "" {
		return errors.New("add token: empty token")
	}
	if u.Name == "" {
		return errors.New("add token: empty user name")
	}
	sum := sha256.Sum256([]byte(token))
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.tokens[sum]; ok {
		return errors.New("add token: token already in use")
	}
	a.tokens[sum] = tokenEntry{token: token, user: User{Name: u.Name, Groups: slices.Clone(u.Groups)}}
	return nil
}

// Authenticate returns the user r's credentials prove, or false when it has
// none or they do not verify (the server answers 401). A verified client
// certificate wins over a token, as in Kubernetes, where the x509
// authenticator runs first. The returned User is the caller's to modify.
func (a *Authenticator) Authenticate(r *http.Request) (User, bool) {
	if u, ok := a.authenticateCert(r); ok {
		return u, true
	}
	return a.authenticateToken(r)
}

// authenticateCert verifies the peer certificate itself even though the
// TLS server was given the same CA: a server configured differently (no
// ClientCAs, RequestClientCert) would otherwise let any certificate in.
func (a *Authenticator) authenticateCert(r *http.Request) (User, bool) {
	if a.pool == nil || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return User{}, false
	}
	leaf := r.TLS.PeerCertificates[0]
	intermediates := x509.NewCertPool()
	for _, c := range r.TLS.PeerCertificates[1:] {
		intermediates.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         a.pool,
		Intermediates: intermediates,
		CurrentTime:   a.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil || leaf.Subject.CommonName == "" {
		return User{}, false
	}
	groups := slices.Clone(leaf.Subject.Organization)
	if !slices.Contains(groups, AuthenticatedGroup) {
		groups = append(groups, AuthenticatedGroup)
	}
	return User{Name: leaf.Subject.CommonName, Groups: groups}, true
}

func (a *Authenticator) authenticateToken(r *http.Request) (User, bool) {
	token, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		return User{}, false
	}
	sum := sha256.Sum256([]byte(token))
	a.mu.RLock()
	e, found := a.tokens[sum]
	a.mu.RUnlock()
	// The digest already decided; comparing the tokens themselves in
	// constant time guards against a digest collision and keeps the final
	// check free of early exits.
	if !found || subtle.ConstantTimeCompare([]byte(e.token), []byte(token)) != 1 {
		return User{}, false
	}
	return User{Name: e.user.Name, Groups: slices.Clone(e.user.Groups)}, true
}

// bearerToken extracts the token from "Bearer <token>"; the scheme is
// case-insensitive (RFC 7235).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}

package auth

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAuthenticate(t *testing.T) {
	ca := newTestCA(t)
	const (
		adminToken     = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		bootstrapToken = "07401b.f395accd246ae52d"
		saToken        = "service-account-token"
	)
	authn, err := NewAuthenticator(ca, adminToken, bootstrapToken)
	if err != nil {
		t.Fatalf("NewAuthenticator: %v", err)
	}
	saUser := User{Name: "system:serviceaccount:kube-system:controller", Groups: []string{"system:serviceaccounts", AuthenticatedGroup}}
	if err := authn.AddToken(saToken, saUser); err != nil {
		t.Fatalf("AddToken: %v", err)
	}

	csrPEM, _, err := NewNodeCSR("n1")
	if err != nil {
		t.Fatal(err)
	}
	nodeCertPEM, err := ca.SignCSR(csrPEM, "system:node:n1", []string{NodesGroup})
	if err != nil {
		t.Fatal(err)
	}
	nodeCert := mustParseCert(t, nodeCertPEM)

	otherCA := newTestCA(t)
	strayPEM, _, err := otherCA.IssueClient("system:node:n1", []string{NodesGroup})
	if err != nil {
		t.Fatal(err)
	}
	// Same subject, issuer name and key type as a real node certificate:
	// only the signature tells them apart.
	strayCert := mustParseCert(t, strayPEM)

	servingCert, _, _, err := ca.IssueServing([]string{"10.99.0.1"})
	if err != nil {
		t.Fatal(err)
	}

	ca.now = func() time.Time { return time.Now().Add(-2 * 365 * 24 * time.Hour) }
	expiredPEM, _, err := ca.IssueClient("system:node:old", []string{NodesGroup})
	ca.now = time.Now
	if err != nil {
		t.Fatal(err)
	}
	expiredCert := mustParseCert(t, expiredPEM)

	adminCertPEM, _, err := ca.IssueClient("alice", []string{MastersGroup})
	if err != nil {
		t.Fatal(err)
	}
	adminCert := mustParseCert(t, adminCertPEM)

	admin := User{Name: "admin", Groups: []string{MastersGroup, AuthenticatedGroup}}
	node := User{Name: "system:node:n1", Groups: []string{NodesGroup, AuthenticatedGroup}}

	tests := []struct {
		name   string
		header string              // Authorization
		certs  []*x509.Certificate // r.TLS.PeerCertificates; nil means no TLS
		want   User
		ok     bool
	}{
		{name: "admin token", header: "Bearer " + adminToken, want: admin, ok: true},
		{name: "scheme is case-insensitive", header: "bearer " + adminToken, want: admin, ok: true},
		{name: "bootstrap token", header: "Bearer " + bootstrapToken, ok: true,
			want: User{Name: "system:bootstrap:07401b", Groups: []string{BootstrappersGroup, AuthenticatedGroup}}},
		{name: "added token", header: "Bearer " + saToken, want: saUser, ok: true},
		{name: "wrong token", header: "Bearer " + adminToken[:63] + "0"},
		{name: "token prefix", header: "Bearer " + adminToken[:32]},
		{name: "bootstrap token id alone", header: "Bearer 07401b"},
		{name: "no header"},
		{name: "empty bearer", header: "Bearer "},
		{name: "basic auth", header: "Basic YWRtaW46YWRtaW4="},
		{name: "token without scheme", header: adminToken},
		{name: "node client certificate", certs: []*x509.Certificate{nodeCert}, want: node, ok: true},
		{name: "admin client certificate", certs: []*x509.Certificate{adminCert}, ok: true,
			want: User{Name: "alice", Groups: []string{MastersGroup, AuthenticatedGroup}}},
		{name: "certificate from another CA", certs: []*x509.Certificate{strayCert}},
		{name: "another CA's certificate with its CA as intermediate", certs: []*x509.Certificate{strayCert, otherCA.Certificate()}},
		{name: "expired certificate", certs: []*x509.Certificate{expiredCert}},
		{name: "serving certificate is not a client certificate", certs: []*x509.Certificate{servingCert.Leaf}},
		{name: "TLS without a certificate falls back to the token", certs: []*x509.Certificate{}, header: "Bearer " + adminToken, want: admin, ok: true},
		{name: "certificate wins over a bad token", certs: []*x509.Certificate{nodeCert}, header: "Bearer nope", want: node, ok: true},
		{name: "foreign certificate does not block a good token", certs: []*x509.Certificate{strayCert}, header: "Bearer " + adminToken, want: admin, ok: true},
	}
	if len(tests) == 0 {
		t.Fatal("no test cases")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "https://127.0.0.1:6443/api/v1/pods", nil)
			r.TLS = nil
			if tc.certs != nil {
				r.TLS = &tls.ConnectionState{PeerCertificates: tc.certs}
			}
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			got, ok := authn.Authenticate(r)
			if ok != tc.ok {
				t.Fatalf("Authenticate ok = %v, want %v (user %+v)", ok, tc.ok, got)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("returned user is a copy", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+adminToken)
		u, _ := authn.Authenticate(r)
		u.Groups[0] = "mutated"
		again, _ := authn.Authenticate(r)
		if again.Groups[0] != MastersGroup {
			t.Errorf("caller's change leaked into the authenticator: %v", again.Groups)
		}
	})
}

func TestNewAuthenticatorAndAddTokenErrors(t *testing.T) {
	if _, err := NewAuthenticator(nil, "admin", "not-a-bootstrap-token"); err == nil {
		t.Error("NewAuthenticator accepted a malformed bootstrap token")
	}
	a, err := NewAuthenticator(nil, "admin", "")
	if err != nil {
		t.Fatalf("NewAuthenticator: %v", err)
	}
	tests := []struct {
		name  string
		token string
		user  User
	}{
		{"empty token", "", User{Name: "x"}},
		{"empty user", "t", User{}},
		{"token already in use", "admin", User{Name: "someone-else"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := a.AddToken(tc.token, tc.user); err == nil {
				t.Error("AddToken succeeded, want an error")
			}
		})
	}

	// Without a CA, certificates are not accepted at all.
	ca := newTestCA(t)
	certPEM, _, err := ca.IssueClient("alice", []string{MastersGroup})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{mustParseCert(t, certPEM)}}
	if u, ok := a.Authenticate(r); ok {
		t.Errorf("authenticator without a CA accepted a certificate as %+v", u)
	}
}

func TestUserNodeName(t *testing.T) {
	tests := []struct {
		name string
		user User
		want string
		ok   bool
	}{
		{"node", User{Name: "system:node:n1", Groups: []string{NodesGroup}}, "n1", true},
		{"name without group", User{Name: "system:node:n1", Groups: []string{AuthenticatedGroup}}, "", false},
		{"group without name", User{Name: "n1", Groups: []string{NodesGroup}}, "", false},
		{"empty node name", User{Name: "system:node:", Groups: []string{NodesGroup}}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.user.NodeName()
			if got != tc.want || ok != tc.ok {
				t.Errorf("NodeName() = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

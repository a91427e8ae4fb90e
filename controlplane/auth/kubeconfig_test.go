package auth

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const testServer = "https://127.0.0.1:6443"

func TestWriteKubeconfig(t *testing.T) {
	ca := newTestCA(t)
	certPEM, keyPEM, err := ca.IssueClient("admin", []string{MastersGroup})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		existing  bool // a file with mode 0644 is there already
		write     func(path string) error
		wantToken string
		wantCert  []byte
	}{
		{
			name:      "token user",
			write:     func(p string) error { return WriteKubeconfig(p, testServer, ca.CertPEM(), "weir", "admin", "tok") },
			wantToken: "tok",
		},
		{
			name:      "token user over a world-readable file",
			existing:  true,
			write:     func(p string) error { return WriteKubeconfig(p, testServer, ca.CertPEM(), "weir", "admin", "tok") },
			wantToken: "tok",
		},
		{
			name: "client certificate user",
			write: func(p string) error {
				return WriteClientCertKubeconfig(p, testServer, ca.CertPEM(), "weir", "admin", certPEM, keyPEM)
			},
			wantCert: certPEM,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "admin.kubeconfig")
			if tc.existing {
				if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, 0o644); err != nil { // past any umask
					t.Fatal(err)
				}
			}
			if err := tc.write(path); err != nil {
				t.Fatalf("write: %v", err)
			}
			if got := fileMode(t, path); got != 0o600 {
				t.Errorf("mode = %o, want 600", got)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("dir holds %d entries, want only the kubeconfig (temp file left behind?)", len(entries))
			}

			cfg, err := clientcmd.LoadFromFile(path)
			if err != nil {
				t.Fatalf("LoadFromFile: %v", err)
			}
			if cfg.CurrentContext != "weir" {
				t.Errorf("current-context = %q, want weir", cfg.CurrentContext)
			}
			kctx := cfg.Contexts["weir"]
			if kctx == nil || kctx.Cluster != "weir" || kctx.AuthInfo != "admin" {
				t.Fatalf("context weir = %+v", kctx)
			}
			cluster := cfg.Clusters["weir"]
			if cluster == nil || cluster.Server != testServer {
				t.Fatalf("cluster weir = %+v", cluster)
			}
			if !bytes.Equal(cluster.CertificateAuthorityData, ca.CertPEM()) {
				t.Error("certificate-authority-data differs from the CA")
			}
			user := cfg.AuthInfos["admin"]
			if user == nil {
				t.Fatal("no user admin")
			}
			if user.Token != tc.wantToken {
				t.Errorf("token = %q, want %q", user.Token, tc.wantToken)
			}
			if !bytes.Equal(user.ClientCertificateData, tc.wantCert) {
				t.Error("client-certificate-data differs")
			}
		})
	}
}

func TestWriteKubeconfigRejectsIncompleteInput(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		name  string
		write func(path string) error
	}{
		{"no server", func(p string) error { return WriteKubeconfig(p, "", ca.CertPEM(), "weir", "admin", "tok") }},
		{"no ca", func(p string) error { return WriteKubeconfig(p, testServer, nil, "weir", "admin", "tok") }},
		{"ca not pem", func(p string) error { return WriteKubeconfig(p, testServer, []byte("junk"), "weir", "admin", "tok") }},
		{"no context", func(p string) error { return WriteKubeconfig(p, testServer, ca.CertPEM(), "", "admin", "tok") }},
		{"no user", func(p string) error { return WriteKubeconfig(p, testServer, ca.CertPEM(), "weir", "", "tok") }},
		{"no token", func(p string) error { return WriteKubeconfig(p, testServer, ca.CertPEM(), "weir", "admin", "") }},
		{"no client cert", func(p string) error {
			return WriteClientCertKubeconfig(p, testServer, ca.CertPEM(), "weir", "admin", nil, []byte("k"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config")
			if err := tc.write(path); err == nil {
				t.Fatal("write succeeded, want an error")
			}
			if _, err := os.Stat(path); err == nil {
				t.Error("a failed write left a file behind")
			}
		})
	}
}

func TestMergeKubeconfig(t *testing.T) {
	ca := newTestCA(t)
	path := filepath.Join(t.TempDir(), ".weir", "config")
	// Someone else's cluster is there first and must survive the merge.
	if err := WriteKubeconfig(path, "https://other:6443", ca.CertPEM(), "other", "other-user", "other-token"); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"first", "second"} { // the second merge replaces the first
		if err := MergeKubeconfig(path, testServer, ca.CertPEM(), "weir", "weir-admin", tok); err != nil {
			t.Fatalf("MergeKubeconfig: %v", err)
		}
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{
		"current":     cfg.CurrentContext,
		"weir server": cfg.Clusters["weir"].Server,
		"weir token":  cfg.AuthInfos["weir-admin"].Token,
		"other user":  cfg.Contexts["other"].AuthInfo,
		"other token": cfg.AuthInfos["other-user"].Token,
	}
	want := map[string]string{
		"current":     "weir",
		"weir server": testServer,
		"weir token":  "second",
		"other user":  "other-user",
		"other token": "other-token",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merged kubeconfig (-want +got):\n%s", diff)
	}
	if n := len(cfg.Contexts); n != 2 {
		t.Errorf("%d contexts, want 2", n)
	}
	if got := fileMode(t, path); got != 0o600 {
		t.Errorf("mode = %o, want 600", got)
	}

	fresh := filepath.Join(t.TempDir(), "new", "config")
	if err := MergeKubeconfig(fresh, testServer, ca.CertPEM(), "weir", "weir-admin", "tok"); err != nil {
		t.Fatalf("MergeKubeconfig into a missing file: %v", err)
	}
}

// TestKubeconfigReachesServer is the whole path a client takes: a
// kubeconfig written here, read by client-go, over TLS to a server that
// uses ServerTLSConfig and Authenticate. It checks that the serving
// certificate, CA data, token and client certificate all fit together.
func TestKubeconfigReachesServer(t *testing.T) {
	ca := newTestCA(t)
	serving, _, _, err := ca.IssueServing(nil)
	if err != nil {
		t.Fatal(err)
	}
	bootstrap := "abcdef.0123456789abcdef"
	authn, err := NewAuthenticator(ca, "admin-token", bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := authn.Authenticate(r)
		if !ok {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "%s %s", u.Name, strings.Join(u.Groups, ","))
	}))
	srv.TLS = ca.ServerTLSConfig(serving)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the foreign-CA case fails its handshake on purpose
	srv.StartTLS()
	t.Cleanup(srv.Close)

	csrPEM, nodeKeyPEM, err := NewNodeCSR("n1")
	if err != nil {
		t.Fatal(err)
	}
	nodeCertPEM, err := ca.SignCSR(csrPEM, "system:node:n1", []string{NodesGroup})
	if err != nil {
		t.Fatal(err)
	}
	otherCA := newTestCA(t)
	strayCertPEM, strayKeyPEM, err := otherCA.IssueClient("system:node:n1", []string{NodesGroup})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		write    func(path string) error
		wantCode int
		want     string
	}{
		{
			name:     "admin token",
			write:    func(p string) error { return WriteKubeconfig(p, srv.URL, ca.CertPEM(), "weir", "admin", "admin-token") },
			wantCode: http.StatusOK,
			want:     "admin system:masters,system:authenticated",
		},
		{
			name:     "bootstrap token",
			write:    func(p string) error { return WriteKubeconfig(p, srv.URL, ca.CertPEM(), "weir", "boot", bootstrap) },
			wantCode: http.StatusOK,
			want:     "system:bootstrap:abcdef system:bootstrappers,system:authenticated",
		},
		{
			name: "node client certificate",
			write: func(p string) error {
				return WriteClientCertKubeconfig(p, srv.URL, ca.CertPEM(), "weir", "n1", nodeCertPEM, nodeKeyPEM)
			},
			wantCode: http.StatusOK,
			want:     "system:node:n1 system:nodes,system:authenticated",
		},
		{
			name:     "wrong token",
			write:    func(p string) error { return WriteKubeconfig(p, srv.URL, ca.CertPEM(), "weir", "admin", "guess") },
			wantCode: http.StatusUnauthorized,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kubeconfig")
			if err := tc.write(path); err != nil {
				t.Fatal(err)
			}
			code, body := getWithKubeconfig(t, path)
			if code != tc.wantCode {
				t.Fatalf("status %d, want %d (body %q)", code, tc.wantCode, body)
			}
			if tc.want != "" && body != tc.want {
				t.Errorf("server saw %q, want %q", body, tc.want)
			}
		})
	}

	// The TLS server itself refuses a certificate from another CA, before
	// Authenticate runs: the handshake fails.
	t.Run("client certificate from another CA", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "kubeconfig")
		if err := WriteClientCertKubeconfig(path, srv.URL, ca.CertPEM(), "weir", "n1", strayCertPEM, strayKeyPEM); err != nil {
			t.Fatal(err)
		}
		client := restClient(t, path)
		resp, err := client.Get(srv.URL)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("request with a foreign certificate got status %d, want a failed handshake", resp.StatusCode)
		}
	})
}

func restClient(t *testing.T, kubeconfig string) *http.Client {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("BuildConfigFromFlags: %v", err)
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatalf("HTTPClientFor: %v", err)
	}
	return client
}

func getWithKubeconfig(t *testing.T, kubeconfig string) (int, string) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := restClient(t, kubeconfig).Get(cfg.Host + "/whoami")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSpace(string(body))
}

package cli

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func writeKubeconfig(t *testing.T, path, namespace string) {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "t"}
	cfg.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u", Namespace: namespace}
	cfg.CurrentContext = "x"
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
}

// TestKubeconfigOrder: --kubeconfig, then $KUBECONFIG, then ~/.weir/config.
func TestKubeconfigOrder(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	flagFile := filepath.Join(t.TempDir(), "flag")
	envFile := filepath.Join(t.TempDir(), "env")
	writeKubeconfig(t, flagFile, "from-flag")
	writeKubeconfig(t, envFile, "from-env")
	writeKubeconfig(t, filepath.Join(home, ".weir", "config"), "from-home")
	cases := []struct {
		name, flag, env, want string
	}{
		{name: "flag wins", flag: flagFile, env: envFile, want: "from-flag"},
		{name: "env next", env: envFile, want: "from-env"},
		{name: "home last", want: "from-home"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", tc.env)
			c, err := NewClient(ConfigFlags{Kubeconfig: tc.flag})
			if err != nil {
				t.Fatal(err)
			}
			if c.Namespace != tc.want || c.ExplicitNamespace {
				t.Fatalf("namespace %q (explicit %v), want %q", c.Namespace, c.ExplicitNamespace, tc.want)
			}
		})
	}
	t.Run("-n overrides the context", func(t *testing.T) {
		c, err := NewClient(ConfigFlags{Kubeconfig: flagFile, Namespace: "other"})
		if err != nil || c.Namespace != "other" || !c.ExplicitNamespace {
			t.Fatalf("%v %+v", err, c)
		}
	})
	t.Run("none found", func(t *testing.T) {
		t.Setenv("HOME", t.TempDir())
		t.Setenv("KUBECONFIG", "")
		if _, err := NewClient(ConfigFlags{}); err == nil {
			t.Fatal("no kubeconfig anywhere, but no error")
		}
	})
}

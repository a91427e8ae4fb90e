package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// WriteKubeconfig writes a kubeconfig to path that reaches server, trusts
// caPEM and authenticates as user with a bearer token. The cluster and the
// context are both named contextName, which is the current context. The file
// is replaced atomically and ends up 0600 whether or not it existed, since it
// holds a credential.
func WriteKubeconfig(path, server string, caPEM []byte, contextName, user, token string) error {
	if token == "" {
		return errors.New("write kubeconfig: empty token")
	}
	cfg, err := newKubeconfig(server, caPEM, contextName, user, &clientcmdapi.AuthInfo{Token: token})
	if err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	if err := writeKubeconfig(path, cfg); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// WriteClientCertKubeconfig is WriteKubeconfig for a user that authenticates
// with a client certificate; certPEM and keyPEM are embedded in the file.
func WriteClientCertKubeconfig(path, server string, caPEM []byte, contextName, user string, certPEM, keyPEM []byte) error {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return errors.New("write kubeconfig: empty client certificate or key")
	}
	cfg, err := newKubeconfig(server, caPEM, contextName, user, &clientcmdapi.AuthInfo{
		ClientCertificateData: bytes.Clone(certPEM),
		ClientKeyData:         bytes.Clone(keyPEM),
	})
	if err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	if err := writeKubeconfig(path, cfg); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// MergeKubeconfig adds or replaces the cluster and context named contextName
// and the user named user in the kubeconfig at path (created if missing, as
// for "weir up" merging into ~/.weir/config), makes contextName current and
// leaves every other entry as it was. The same atomic 0600 write applies.
func MergeKubeconfig(path, server string, caPEM []byte, contextName, user, token string) error {
	if token == "" {
		return errors.New("merge kubeconfig: empty token")
	}
	add, err := newKubeconfig(server, caPEM, contextName, user, &clientcmdapi.AuthInfo{Token: token})
	if err != nil {
		return fmt.Errorf("merge kubeconfig: %w", err)
	}
	cfg, err := clientcmd.LoadFromFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		cfg = clientcmdapi.NewConfig()
	case err != nil:
		return fmt.Errorf("merge kubeconfig: %w", err)
	}
	cfg.Clusters[contextName] = add.Clusters[contextName]
	cfg.AuthInfos[user] = add.AuthInfos[user]
	cfg.Contexts[contextName] = add.Contexts[contextName]
	cfg.CurrentContext = contextName
	if err := writeKubeconfig(path, cfg); err != nil {
		return fmt.Errorf("merge kubeconfig: %w", err)
	}
	return nil
}

func newKubeconfig(server string, caPEM []byte, contextName, user string, auth *clientcmdapi.AuthInfo) (*clientcmdapi.Config, error) {
	switch {
	case server == "":
		return nil, errors.New("empty server")
	case contextName == "":
		return nil, errors.New("empty context name")
	case user == "":
		return nil, errors.New("empty user")
	}
	if _, err := parseCertPEM(caPEM); err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	cfg := clientcmdapi.NewConfig()
	cluster := clientcmdapi.NewCluster()
	cluster.Server = server
	cluster.CertificateAuthorityData = bytes.Clone(caPEM)
	cfg.Clusters[contextName] = cluster
	cfg.AuthInfos[user] = auth
	kctx := clientcmdapi.NewContext()
	kctx.Cluster = contextName
	kctx.AuthInfo = user
	cfg.Contexts[contextName] = kctx
	cfg.CurrentContext = contextName
	return cfg, nil
}

func writeKubeconfig(path string, cfg *clientcmdapi.Config) error {
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return writeFileAtomic(path, data, 0o600)
}

package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	clientv3 "go.etcd.io/etcd/client/v3"

	"weir.dev/weir/controlplane/auth"
)

// pkiKey holds the cluster's CA and tokens in etcd so that every server
// sharing the etcd cluster serves with the same CA and accepts the same
// credentials; the first server to start writes it.
const pkiKey = "/weir/bootstrap/pki"

type pkiBundle struct {
	CACert         []byte `json:"caCert"`
	CAKey          []byte `json:"caKey"`
	AdminToken     string `json:"adminToken"`
	BootstrapToken string `json:"bootstrapToken"`
}

type pki struct {
	ca             *auth.CA
	adminToken     string
	bootstrapToken string
}

// loadPKI makes sure the local PKI directory holds the cluster's bundle:
// it proposes a locally generated one and adopts whatever etcd holds.
func loadPKI(ctx context.Context, cli *clientv3.Client, dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create pki dir: %w", err)
	}
	if _, err := auth.LoadOrCreateCA(dir); err != nil {
		return nil, fmt.Errorf("load ca: %w", err)
	}
	admin, err := auth.LoadOrCreateToken(filepath.Join(dir, "admin.token"))
	if err != nil {
		return nil, err
	}
	boot, err := auth.LoadOrCreateBootstrapToken(filepath.Join(dir, "bootstrap.token"))
	if err != nil {
		return nil, err
	}
	local := pkiBundle{AdminToken: admin, BootstrapToken: boot}
	if local.CACert, err = os.ReadFile(filepath.Join(dir, auth.CACertFile)); err != nil {
		return nil, err
	}
	if local.CAKey, err = os.ReadFile(filepath.Join(dir, auth.CAKeyFile)); err != nil {
		return nil, err
	}
	val, err := json.Marshal(local)
	if err != nil {
		return nil, err
	}
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(pkiKey), "=", 0)).
		Then(clientv3.OpPut(pkiKey, string(val))).
		Else(clientv3.OpGet(pkiKey)).Commit()
	if err != nil {
		return nil, fmt.Errorf("publish pki: %w", err)
	}
	if !resp.Succeeded {
		var shared pkiBundle
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 || json.Unmarshal(kvs[0].Value, &shared) != nil {
			return nil, fmt.Errorf("read shared pki from etcd: malformed %s", pkiKey)
		}
		for name, b := range map[string][]byte{
			auth.CACertFile: shared.CACert, auth.CAKeyFile: shared.CAKey,
			"admin.token": []byte(shared.AdminToken), "bootstrap.token": []byte(shared.BootstrapToken),
		} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				return nil, fmt.Errorf("adopt shared pki: %w", err)
			}
		}
		admin, boot = shared.AdminToken, shared.BootstrapToken
	}
	ca, err := auth.LoadOrCreateCA(dir)
	if err != nil {
		return nil, fmt.Errorf("load ca: %w", err)
	}
	return &pki{ca: ca, adminToken: admin, bootstrapToken: boot}, nil
}

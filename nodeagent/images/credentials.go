package images

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Credential is a username and password for one registry host, as an
// image pull secret gives them.
type Credential struct {
	// Registry is the normalised registry host (NormalizeRegistry):
	// "registry.example:5000", or "docker.io" for Docker Hub.
	Registry string
	Username string
	Password string
}

// digest identifies the credential in a pull's deduplication key without
// keeping the password in it.
func (c Credential) digest() string {
	sum := sha256.Sum256([]byte(c.Registry + "\x00" + c.Username + "\x00" + c.Password))
	return hex.EncodeToString(sum[:])
}

// dockerHub is the normalised name of Docker Hub; its other names (as
// `docker login` and references write them) are aliases of it.
const dockerHub = "docker.io"

var dockerHubAliases = map[string]bool{
	"docker.io":               true,
	"index.docker.io":         true,
	"registry-1.docker.io":    true,
	"registry.hub.docker.com": true,
}

// NormalizeRegistry turns a docker config key ("registry.example",
// "registry.example:5000", "https://registry.example/v1/",
// "http://10.0.0.1:5000") or a reference's registry host into the form
// credentials are matched on: the lower-case host with its port, without
// scheme or path; Docker Hub's names all become "docker.io".
func NormalizeRegistry(key string) (string, error) {
	k := strings.TrimSpace(key)
	if k == "" {
		return "", errors.New("empty registry")
	}
	if strings.Contains(k, "://") {
		u, err := url.Parse(k)
		if err != nil {
			return "", fmt.Errorf("registry %q: %w", key, err)
		}
		k = u.Host
	} else if i := strings.IndexByte(k, '/'); i >= 0 {
		k = k[:i]
	}
	k = strings.ToLower(k)
	if err := CheckRegistryHost(k); err != nil {
		return "", fmt.Errorf("registry %q: %w", key, err)
	}
	if dockerHubAliases[k] {
		return dockerHub, nil
	}
	return k, nil
}

// dockerConfigEntry is one registry's entry in a docker config.
type dockerConfigEntry struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Auth     string `json:"auth"`
}

// ParseDockerConfig reads the credentials of a docker config: the
// .dockerconfigjson form ({"auths": {KEY: ENTRY}}) or, legacy, the
// .dockercfg form ({KEY: ENTRY}). An entry's "auth" (base64 of
// "user:password") wins over its username and password, as Docker's own
// reading does. The result is sorted by key, so that which of two
// entries for one host comes first does not depend on map order.
func ParseDockerConfig(data []byte, legacy bool) ([]Credential, error) {
	var auths map[string]dockerConfigEntry
	if legacy {
		if err := json.Unmarshal(data, &auths); err != nil {
			return nil, fmt.Errorf("malformed JSON: %w", err)
		}
	} else {
		var cfg struct {
			Auths map[string]dockerConfigEntry `json:"auths"`
		}
		if err := json.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf("malformed JSON: %w", err)
		}
		if cfg.Auths == nil {
			return nil, errors.New(`no "auths" object`)
		}
		auths = cfg.Auths
	}
	keys := make([]string, 0, len(auths))
	for k := range auths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Credential
	for _, k := range keys {
		e := auths[k]
		field := fmt.Sprintf("auths[%q]", k)
		if legacy {
			field = fmt.Sprintf("[%q]", k)
		}
		host, err := NormalizeRegistry(k)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		c := Credential{Registry: host, Username: e.Username, Password: e.Password}
		if e.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return nil, fmt.Errorf("%s.auth: not base64: %w", field, err)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("%s.auth: not base64 of user:password", field)
			}
			c.Username, c.Password = user, pass
		}
		if c.Username == "" {
			return nil, fmt.Errorf("%s: no username or auth", field)
		}
		out = append(out, c)
	}
	return out, nil
}

// SecretCredentials reads the credentials of an image pull secret: type
// kubernetes.io/dockerconfigjson (key .dockerconfigjson) or
// kubernetes.io/dockercfg (key .dockercfg). Errors name the secret and
// the key.
func SecretCredentials(s *corev1.Secret) ([]Credential, error) {
	var key string
	var legacy bool
	switch s.Type {
	case corev1.SecretTypeDockerConfigJson:
		key = corev1.DockerConfigJsonKey
	case corev1.SecretTypeDockercfg:
		key, legacy = corev1.DockerConfigKey, true
	default:
		return nil, fmt.Errorf("image pull secret %s/%s: type %q is not %s or %s", s.Namespace, s.Name, s.Type,
			corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg)
	}
	data, ok := s.Data[key]
	if !ok {
		return nil, fmt.Errorf("image pull secret %s/%s: no key %s", s.Namespace, s.Name, key)
	}
	creds, err := ParseDockerConfig(data, legacy)
	if err != nil {
		return nil, fmt.Errorf("image pull secret %s/%s key %s: %w", s.Namespace, s.Name, key, err)
	}
	return creds, nil
}

// MatchCredentials returns those of creds, in order, that are for the
// registry host of an image reference ("registry.example:5000",
// "docker.io"). The host and port must both match; a key without a port
// is for the registry on the default port only.
func MatchCredentials(creds []Credential, host string) []Credential {
	h, err := NormalizeRegistry(host)
	if err != nil {
		return nil
	}
	var out []Credential
	for _, c := range creds {
		if c.Registry == h {
			out = append(out, c)
		}
	}
	return out
}

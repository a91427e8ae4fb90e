package images

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestNormalizeRegistry(t *testing.T) {
	tests := []struct {
		key, want string
	}{
		{"registry.example", "registry.example"},
		{"Registry.Example:5000", "registry.example:5000"},
		{"https://registry.example/v1/", "registry.example"},
		{"http://10.0.0.1:5000", "10.0.0.1:5000"},
		{"http://10.0.0.1:5000/v2/", "10.0.0.1:5000"},
		{"registry.example:5000/some/path", "registry.example:5000"},
		{"[::1]:5000", "[::1]:5000"},
		{"docker.io", "docker.io"},
		{"index.docker.io", "docker.io"},
		{"registry-1.docker.io", "docker.io"},
		{"https://index.docker.io/v1/", "docker.io"},
		{"registry.hub.docker.com", "docker.io"},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			got, err := NormalizeRegistry(tc.key)
			if err != nil || got != tc.want {
				t.Errorf("NormalizeRegistry(%q) = %q, %v, want %q", tc.key, got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "  ", "https://", "reg.example:0", "a b", "http://reg.example:x/"} {
		if got, err := NormalizeRegistry(bad); err == nil {
			t.Errorf("NormalizeRegistry(%q) = %q, want an error", bad, got)
		}
	}
}

func TestParseDockerConfig(t *testing.T) {
	tests := []struct {
		name   string
		legacy bool
		data   string
		want   []Credential
		err    string // substring of the error; "" for none
	}{
		{name: "username and password", data: `{"auths":{"reg.example:5000":{"username":"u","password":"p"}}}`,
			want: []Credential{{Registry: "reg.example:5000", Username: "u", Password: "p"}}},
		{name: "auth wins", data: `{"auths":{"https://index.docker.io/v1/":{"username":"x","password":"y","auth":"` + b64("u:p:with:colons") + `"}}}`,
			want: []Credential{{Registry: "docker.io", Username: "u", Password: "p:with:colons"}}},
		{name: "sorted by key", data: `{"auths":{"z.example":{"auth":"` + b64("z:1") + `"},"a.example":{"auth":"` + b64("a:2") + `"}}}`,
			want: []Credential{{Registry: "a.example", Username: "a", Password: "2"}, {Registry: "z.example", Username: "z", Password: "1"}}},
		{name: "empty auths", data: `{"auths":{}}`},
		{name: "legacy", legacy: true, data: `{"http://10.0.0.1:5000":{"auth":"` + b64("u:p") + `","email":"e@x"}}`,
			want: []Credential{{Registry: "10.0.0.1:5000", Username: "u", Password: "p"}}},
		{name: "malformed JSON", data: `{"auths":`, err: "malformed JSON"},
		{name: "malformed legacy JSON", legacy: true, data: `[1]`, err: "malformed JSON"},
		{name: "no auths", data: `{"reg.example":{"auth":"` + b64("u:p") + `"}}`, err: `no "auths" object`},
		{name: "bad base64", data: `{"auths":{"reg.example":{"auth":"%%%"}}}`, err: `auths["reg.example"].auth: not base64`},
		{name: "no colon", data: `{"auths":{"reg.example":{"auth":"` + b64("nocolon") + `"}}}`, err: `auths["reg.example"].auth: not base64 of user:password`},
		{name: "no username", data: `{"auths":{"reg.example":{"password":"p"}}}`, err: `auths["reg.example"]: no username or auth`},
		{name: "bad key", data: `{"auths":{"a b":{"auth":"` + b64("u:p") + `"}}}`, err: `auths["a b"]: registry`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDockerConfig([]byte(tc.data), tc.legacy)
			checkCredentials(t, got, err, tc.want, tc.err)
		})
	}
}

func TestSecretCredentials(t *testing.T) {
	meta := metav1.ObjectMeta{Namespace: "ns", Name: "pull"}
	good := Credential{Registry: "reg.example", Username: "u", Password: "p"}
	tests := []struct {
		name   string
		secret corev1.Secret
		want   []Credential
		err    string
	}{
		{name: "dockerconfigjson", secret: corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"reg.example":{"auth":"` + b64("u:p") + `"}}}`)}},
			want: []Credential{good}},
		{name: "dockercfg", secret: corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeDockercfg,
			Data: map[string][]byte{".dockercfg": []byte(`{"reg.example":{"username":"u","password":"p"}}`)}},
			want: []Credential{good}},
		{name: "wrong type", secret: corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeOpaque},
			err: `image pull secret ns/pull: type "Opaque" is not kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg`},
		{name: "missing key", secret: corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{".dockercfg": []byte(`{}`)}},
			err: "image pull secret ns/pull: no key .dockerconfigjson"},
		{name: "malformed", secret: corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{".dockerconfigjson": []byte(`{nope`)}},
			err: "image pull secret ns/pull key .dockerconfigjson: malformed JSON"},
		{name: "bad base64", secret: corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeDockercfg,
			Data: map[string][]byte{".dockercfg": []byte(`{"reg.example":{"auth":"!!"}}`)}},
			err: `image pull secret ns/pull key .dockercfg: ["reg.example"].auth: not base64`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SecretCredentials(&tc.secret)
			checkCredentials(t, got, err, tc.want, tc.err)
		})
	}
}

func TestMatchCredentials(t *testing.T) {
	creds := []Credential{
		{Registry: "reg.example:5000", Username: "a"},
		{Registry: "docker.io", Username: "hub"},
		{Registry: "reg.example", Username: "b"},
		{Registry: "reg.example:5000", Username: "c"},
	}
	tests := []struct {
		host string
		want []string // usernames, in order
	}{
		{"reg.example:5000", []string{"a", "c"}},
		{"REG.example:5000", []string{"a", "c"}},
		{"reg.example", []string{"b"}},
		{"reg.example:5001", nil},
		{"docker.io", []string{"hub"}},
		{"registry-1.docker.io", []string{"hub"}},
		{"other.example", nil},
		{"", nil},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			var got []string
			for _, c := range MatchCredentials(creds, tc.host) {
				got = append(got, c.Username)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("MatchCredentials(%q) (-want +got):\n%s", tc.host, d)
			}
		})
	}
}

// checkCredentials checks got and err against want, or against an error
// containing wantErr when that is set.
func checkCredentials(t *testing.T, got []Credential, err error, want []Credential, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error %v, want one containing %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("credentials (-want +got):\n%s", d)
	}
}

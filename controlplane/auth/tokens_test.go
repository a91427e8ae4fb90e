package auth

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestLoadOrCreateTokens(t *testing.T) {
	tests := []struct {
		name   string
		load   func(string) (string, error)
		format *regexp.Regexp
	}{
		{"admin token", LoadOrCreateToken, regexp.MustCompile(`^[0-9a-f]{64}$`)},
		{"bootstrap token", LoadOrCreateBootstrapToken, regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", "token")
			first, err := tc.load(path)
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if !tc.format.MatchString(first) {
				t.Errorf("token %q does not match %v", first, tc.format)
			}
			if got := fileMode(t, path); got != 0o600 {
				t.Errorf("mode = %o, want 600", got)
			}
			second, err := tc.load(path)
			if err != nil {
				t.Fatalf("reload: %v", err)
			}
			if second != first {
				t.Errorf("reload gave %q, want the stored %q", second, first)
			}
			other, err := tc.load(filepath.Join(t.TempDir(), "token"))
			if err != nil {
				t.Fatal(err)
			}
			if other == first {
				t.Error("two new tokens are equal")
			}
		})
	}
}

func TestLoadOrCreateTokenExistingFile(t *testing.T) {
	tests := []struct {
		name      string
		load      func(string) (string, error)
		content   string
		want      string
		wantError bool
	}{
		{name: "hand-written admin token", load: LoadOrCreateToken, content: "s3cret-Token_1\n", want: "s3cret-Token_1"},
		{name: "admin token with a space", load: LoadOrCreateToken, content: "two words", wantError: true},
		{name: "empty admin token file", load: LoadOrCreateToken, content: "\n", wantError: true},
		{name: "hand-written bootstrap token", load: LoadOrCreateBootstrapToken, content: "abcdef.0123456789abcdef\n", want: "abcdef.0123456789abcdef"},
		{name: "upper-case bootstrap token", load: LoadOrCreateBootstrapToken, content: "ABCDEF.0123456789abcdef", wantError: true},
		{name: "short bootstrap secret", load: LoadOrCreateBootstrapToken, content: "abcdef.0123", wantError: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := tc.load(path)
			if tc.wantError {
				if err == nil {
					t.Fatalf("loaded %q, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("token = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseBootstrapToken(t *testing.T) {
	tests := []struct {
		token, id, secret string
		ok                bool
	}{
		{"abcdef.0123456789abcdef", "abcdef", "0123456789abcdef", true},
		{"07401b.f395accd246ae52d", "07401b", "f395accd246ae52d", true},
		{"abcdef0123456789abcdef", "", "", false},
		{"abcde.0123456789abcdefg", "", "", false},
		{"abcdef.0123456789abcde", "", "", false},
		{"abcdef.0123456789abcdeF", "", "", false},
		{"abc-ef.0123456789abcdef", "", "", false},
		{"abcdef.0123456789abcdef.", "", "", false},
		{"", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.token, func(t *testing.T) {
			id, secret, ok := ParseBootstrapToken(tc.token)
			if id != tc.id || secret != tc.secret || ok != tc.ok {
				t.Errorf("ParseBootstrapToken(%q) = %q, %q, %v; want %q, %q, %v", tc.token, id, secret, ok, tc.id, tc.secret, tc.ok)
			}
		})
	}
}

// TestRandomStringUsesWholeAlphabet guards the rejection sampling: a bug
// there shows as characters that never appear.
func TestRandomStringUsesWholeAlphabet(t *testing.T) {
	s, err := randomString(4000)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range tokenAlphabet {
		if !strings.ContainsRune(s, c) {
			t.Errorf("%q never drawn in 4000 characters", c)
		}
	}
	if strings.Trim(s, tokenAlphabet) != "" {
		t.Error("drew a character outside the alphabet")
	}
}

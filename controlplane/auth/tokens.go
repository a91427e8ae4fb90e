package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LoadOrCreateToken returns the bearer token stored in path, or, when path
// does not exist, a new random 32-byte token in hex that it writes to path
// (0600, parent directories 0700). A token written by hand is accepted if it
// is made of the characters a Bearer header allows (RFC 6750).
func LoadOrCreateToken(path string) (string, error) {
	tok, err := loadOrCreate(path, newHexToken, validBearerToken)
	if err != nil {
		return "", fmt.Errorf("load or create token: %w", err)
	}
	return tok, nil
}

// LoadOrCreateBootstrapToken is LoadOrCreateToken for a bootstrap token in
// the Kubernetes format "<id>.<secret>", [a-z0-9]{6}.[a-z0-9]{16}; the id
// names the bootstrapping user ("system:bootstrap:<id>") and is not secret.
func LoadOrCreateBootstrapToken(path string) (string, error) {
	tok, err := loadOrCreate(path, newBootstrapToken, func(t string) error {
		if _, _, ok := ParseBootstrapToken(t); !ok {
			return errors.New("not a bootstrap token of the form [a-z0-9]{6}.[a-z0-9]{16}")
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("load or create bootstrap token: %w", err)
	}
	return tok, nil
}

// ParseBootstrapToken splits a bootstrap token into its id and secret and
// reports whether it has the Kubernetes format [a-z0-9]{6}.[a-z0-9]{16}.
func ParseBootstrapToken(token string) (id, secret string, ok bool) {
	id, secret, found := strings.Cut(token, ".")
	if !found || len(id) != 6 || len(secret) != 16 || !lowerAlnum(id) || !lowerAlnum(secret) {
		return "", "", false
	}
	return id, secret, true
}

func lowerAlnum(s string) bool {
	for i := range len(s) {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func loadOrCreate(path string, generate func() (string, error), valid func(string) error) (string, error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		tok := strings.TrimSpace(string(data))
		if err := valid(tok); err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		return tok, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", err
	}
	tok, err := generate()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if err := writeFileAtomic(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	return tok, nil
}

func newHexToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

const tokenAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

func newBootstrapToken() (string, error) {
	id, err := randomString(6)
	if err != nil {
		return "", err
	}
	secret, err := randomString(16)
	if err != nil {
		return "", err
	}
	return id + "." + secret, nil
}

// randomString draws n characters uniformly from tokenAlphabet. Bytes at or
// above the largest multiple of 36 are discarded so that the modulo does not
// favour the first characters.
func randomString(n int) (string, error) {
	const limit = 256 - 256%len(tokenAlphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("generate token: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, tokenAlphabet[int(b)%len(tokenAlphabet)])
			}
		}
	}
	return string(out), nil
}

// validBearerToken accepts RFC 6750's b64token: the characters that can
// follow "Bearer " in an Authorization header without quoting.
func validBearerToken(t string) error {
	if t == "" {
		return errors.New("empty token")
	}
	for i := range len(t) {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~+/=", c) >= 0:
		default:
			return fmt.Errorf("token contains %q, which a bearer token may not", c)
		}
	}
	return nil
}

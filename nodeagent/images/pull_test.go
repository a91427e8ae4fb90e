package images

import (
	"testing"

	"github.com/containerd/containerd/v2/client"
)

func TestPlainHTTP(t *testing.T) {
	p, err := NewPuller(&client.Client{}, []string{"reg.example:5000", "reg2.example", "10.1.2.3:80"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		want bool
	}{
		{"127.0.0.1:5000", true},
		{"127.9.9.9:1", true},
		{"localhost:5000", true},
		{"localhost", true},
		{"[::1]:5000", true},
		{"reg.example:5000", true},
		{"reg.example:5001", false},
		{"reg.example", false},
		{"reg2.example:443", true},
		{"REG2.example", true},
		{"10.1.2.3:80", true},
		{"10.1.2.3:81", false},
		{"docker.io", false},
		{"registry.example", false},
	}
	for _, tc := range tests {
		if got := p.PlainHTTP(tc.host); got != tc.want {
			t.Errorf("PlainHTTP(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
	for _, bad := range []string{"", "http://reg.example", "reg.example/path", "reg.example:0", "reg.example:x", "a b"} {
		if _, err := NewPuller(&client.Client{}, []string{bad}); err == nil {
			t.Errorf("insecure registry %q accepted", bad)
		}
	}
}

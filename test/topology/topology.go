package topology

import (
	"crypto/rand"
	"net"
	"regexp"
	"sync"
	"testing"
)

// MaxNameLen is the longest name UniqueName returns: a Linux interface name
// is at most IFNAMSIZ-1 = 15 bytes, and names fit everything else too.
const MaxNameLen = 15

// suffixLen random characters from a 36-letter alphabet give 36^6 ≈ 2·10⁹
// names per prefix, enough that two concurrent test binaries do not collide.
const suffixLen = 6

const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// validPrefix is the character set that is safe in interface, netns, cgroup
// and file names alike (no '/', ':', whitespace or '%').
var validPrefix = regexp.MustCompile(`^[A-Za-z0-9._-]*$`)

var (
	issuedMu sync.Mutex
	issued   = map[string]bool{}
)

// UniqueName returns prefix followed by a random suffix of lowercase letters
// and digits, at most MaxNameLen bytes long, safe as an interface, network
// namespace, cgroup or file name. A prefix longer than MaxNameLen-6 bytes is
// truncated so that the suffix keeps its full length. The name is unique
// within the test binary and, with overwhelming probability, across binaries
// running at the same time.
//
// UniqueName calls t.Fatalf if prefix holds characters outside
// [A-Za-z0-9._-]. It is safe for concurrent use.
func UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	if !validPrefix.MatchString(prefix) {
		t.Fatalf("topology: name prefix %q: only [A-Za-z0-9._-] allowed", prefix)
	}
	if len(prefix) > MaxNameLen-suffixLen {
		prefix = prefix[:MaxNameLen-suffixLen]
	}
	issuedMu.Lock()
	defer issuedMu.Unlock()
	for {
		name := prefix + randomSuffix()
		if !issued[name] {
			issued[name] = true
			return name
		}
	}
}

func randomSuffix() string {
	var b [suffixLen]byte
	rand.Read(b[:]) // never returns an error (crypto/rand since Go 1.24)
	for i := range b {
		// 256 % 36 = 4: the first four letters are very slightly more
		// likely; irrelevant for naming.
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago: it
// listens on port 0 and closes the listener. Another process may take the
// port before the caller binds it; callers that start servers should retry
// once on "address already in use". It calls t.Fatalf when it cannot listen.
// It is safe for concurrent use.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts returns n distinct free loopback TCP ports, holding every
// listener open until all n are chosen so that the kernel cannot hand out the
// same port twice. The race described at FreePort still applies.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("topology: pick a free loopback port: %v", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

package kubectl

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"testing"
)

// kubectlVersion is the k8s.io/kubectl version in kubectl/go.mod; the
// linker stamps it as release builds do, or kubectl cannot parse its own
// version.
const kubectlVersion = "v1.37.2"

var ldflags = "-s -w" +
	" -X k8s.io/component-base/version.gitVersion=" + kubectlVersion +
	" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37" +
	" -X k8s.io/client-go/pkg/version.gitVersion=" + kubectlVersion +
	" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=37"

// Build builds the nested module's kubectl once per go.sum and main.go,
// caching the binary under the temporary directory (a cold build takes
// about 70 s), and returns its path. Other packages' tests (test/e2e) run
// the same binary.
func Build(t testing.TB) string {
	t.Helper()
	_, self, _, ok := goruntime.Caller(0)
	if !ok {
		t.Fatal("build kubectl: cannot locate the source")
	}
	src := filepath.Join(filepath.Dir(self), "kubectl")
	h := sha256.New()
	h.Write([]byte(ldflags))
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	dir := filepath.Join(os.TempDir(), "weir-kubectl-"+hex.EncodeToString(h.Sum(nil))[:16])
	bin := filepath.Join(dir, "kubectl")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := bin + ".tmp"
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags="+ldflags, "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build kubectl: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"weir.dev/weir/nodeagent/containerd/containerdtest"
	wimages "weir.dev/weir/nodeagent/images"
)

// runWeir runs the weir command line without a cluster server.
func runWeir(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := NewRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String() + errOut.String(), err
}

// TestImageCommands writes the test images with `weir image build`,
// imports them into every node of a local cluster's containerd with
// `weir image import` (and an image exported from containerd, as
// `ctr images export` writes it, into one node with --node), lists them
// with `weir image ls`, and rejects bad input without importing anything.
func TestImageCommands(t *testing.T) {
	d := containerdtest.Start(t)
	// A data dir as weir up leaves it: cluster.json and containerd/.
	dataDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dataDir, "cluster.json"), []byte(`{"nodes":["tn1","tn2"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(d.Dir, filepath.Join(dataDir, "containerd")); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	stdout, err := runWeir(t, "image", "build", "--out", out)
	if err != nil {
		t.Fatalf("image build: %v: %s", err, stdout)
	}
	tarball := filepath.Join(out, "busybox.tar")
	if strings.TrimSpace(stdout) != tarball {
		t.Errorf("image build printed %q, want %s", stdout, tarball)
	}

	stdout, err = runWeir(t, "image", "import", tarball, "--data-dir", dataDir)
	if err != nil {
		t.Fatalf("image import: %v: %s", err, stdout)
	}
	for _, node := range []string{"tn1", "tn2"} {
		for _, name := range []string{wimages.BusyboxName, wimages.DockerBusyboxName} {
			if !strings.Contains(stdout, "imported "+name+" on "+node+"\n") {
				t.Errorf("import output %q lacks %s on %s", stdout, name, node)
			}
			ctx := namespaces.WithNamespace(t.Context(), "weir-"+node)
			img, err := d.Client.GetImage(ctx, name)
			if err != nil {
				t.Fatalf("%s on %s: %v", name, node, err)
			}
			if ok, err := img.IsUnpacked(ctx, wimages.Snapshotter); err != nil || !ok {
				t.Errorf("%s on %s unpacked = %v, %v", name, node, ok, err)
			}
			if !wimages.Imported(img) {
				t.Errorf("%s on %s is not marked imported", name, node)
			}
		}
	}

	// An image exported from containerd (OCI layout plus Docker's
	// manifest.json), imported into one node only.
	const exported = "weir.local/exported:v1"
	src := namespaces.WithNamespace(t.Context(), "weir-tn1")
	bb, err := d.Client.ImageService().Get(src, wimages.BusyboxName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Client.ImageService().Create(src, images.Image{Name: exported, Target: bb.Target}); err != nil {
		t.Fatal(err)
	}
	exportPath := filepath.Join(out, "exported.tar")
	f, err := os.Create(exportPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Client.Export(src, f, archive.WithImage(d.Client.ImageService(), exported)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := d.Client.ImageService().Delete(src, exported); err != nil {
		t.Fatal(err)
	}
	stdout, err = runWeir(t, "image", "import", exportPath, "--data-dir", dataDir, "--node", "tn2")
	if err != nil || stdout != "imported "+exported+" on tn2\n" {
		t.Fatalf("import of an export: %v: %q", err, stdout)
	}
	if _, err := d.Client.GetImage(src, exported); err == nil {
		t.Error("--node tn2 imported into tn1 too")
	}

	stdout, err = runWeir(t, "image", "ls", "--data-dir", dataDir)
	if err != nil {
		t.Fatalf("image ls: %v: %s", err, stdout)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "NODE") {
		t.Fatalf("image ls:\n%s\nwant a header and 5 images", stdout)
	}
	for _, want := range [][]string{{"tn1", wimages.BusyboxName, "imported"}, {"tn2", exported, "imported"}} {
		found := false
		for _, l := range lines {
			f := strings.Fields(l)
			found = found || (len(f) == 5 && f[0] == want[0] && f[1] == want[1] && f[4] == want[2])
		}
		if !found {
			t.Errorf("image ls lacks %v:\n%s", want, stdout)
		}
	}

	// Bad input: a clear error, a non-zero exit, nothing imported.
	garbage := filepath.Join(out, "garbage.tar")
	if err := os.WriteFile(garbage, []byte("not a tarball"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"image", "import", filepath.Join(out, "nope.tar"), "--data-dir", dataDir}, "nope.tar"},
		{"not a tarball", []string{"image", "import", garbage, "--data-dir", dataDir}, "garbage.tar"},
		{"unknown node", []string{"image", "import", tarball, "--data-dir", dataDir, "--node", "tn9"}, `--node[0] "tn9": not a node`},
		{"no cluster", []string{"image", "import", tarball, "--data-dir", t.TempDir()}, "run weir up first"},
		{"no file", []string{"image", "import", "--data-dir", dataDir}, "accepts 1 arg"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, err := runWeir(t, tc.args...)
			t.Logf("%v", err)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
			if strings.Contains(stdout, "imported") {
				t.Errorf("output %q after an error", stdout)
			}
		})
	}
	after, err := runWeir(t, "image", "ls", "--data-dir", dataDir)
	t.Logf("%s", after)
	if err != nil || len(strings.Split(strings.TrimSpace(after), "\n")) != 6 {
		t.Errorf("images after the failed imports:\n%s (%v)", after, err)
	}
}

package images

import (
	"bytes"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"

	"weir.dev/weir/nodeagent/containerd/containerdtest"
)

func TestImportUnpacks(t *testing.T) {
	d := containerdtest.Start(t)
	ctx := t.Context()
	img, err := Busybox("")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	start := time.Now()
	if _, err := Write(&buf, img); err != nil {
		t.Fatal(err)
	}
	built, size := time.Since(start), buf.Len()
	start = time.Now()
	names, err := Import(ctx, d.Client, "weir-test", &buf)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("busybox image: %d bytes, built in %v, imported and unpacked in %v", size, built, time.Since(start))
	if len(names) != 2 {
		t.Errorf("imported %v, want both busybox names", names)
	}
	nctx := namespaces.WithNamespace(ctx, "weir-test")
	for _, n := range []string{BusyboxName, DockerBusyboxName} {
		i, err := d.Client.GetImage(nctx, n)
		if err != nil {
			t.Fatalf("get %s: %v", n, err)
		}
		ok, err := i.IsUnpacked(nctx, Snapshotter)
		if err != nil || !ok {
			t.Errorf("%s unpacked = %v, %v", n, ok, err)
		}
	}
	// Images live per namespace: another namespace does not see them.
	if _, err := d.Client.GetImage(namespaces.WithNamespace(ctx, "weir-other"), BusyboxName); err == nil {
		t.Error("image visible in another namespace")
	}
	// EnsureBusybox is a no-op when the image is there and imports when not.
	if err := EnsureBusybox(ctx, d.Client, "weir-test"); err != nil {
		t.Fatal(err)
	}
	if err := EnsureBusybox(ctx, d.Client, "weir-other"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Client.GetImage(namespaces.WithNamespace(ctx, "weir-other"), DockerBusyboxName); err != nil {
		t.Errorf("after EnsureBusybox: %v", err)
	}
}

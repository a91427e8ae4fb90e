package images_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"weir.dev/weir/nodeagent/containerd/containerdtest"
	"weir.dev/weir/nodeagent/images"
	"weir.dev/weir/nodeagent/images/registrytest"
)

// TestPullFromRegistry pulls an image from a real registry on loopback
// (plain HTTP) into a namespace, many times at once: the registry is
// asked once, and the image arrives unpacked. A missing image and a
// weir.local image fail with what went wrong.
func TestPullFromRegistry(t *testing.T) {
	d := containerdtest.Start(t)
	reg := registrytest.Start(t)
	img, err := images.Busybox("")
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/weir/busybox:v1"
	img.Names = []string{ref}
	reg.Push(t, d.Client, img)

	p, err := images.NewPuller(d.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	manifest := "/v2/weir/busybox/manifests/v1"
	resolves := func() int { return reg.Requests("HEAD", manifest) + reg.Requests("GET", manifest) }
	before := resolves() // the push asked too
	const ns = "weir-pull"
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = p.Pull(t.Context(), ns, ref)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := resolves() - before; got != 1 {
		t.Errorf("%d concurrent pulls resolved the tag %d times, want once", n, got)
	}
	ctx := namespaces.WithNamespace(t.Context(), ns)
	pulled, err := d.Client.GetImage(ctx, ref)
	if err != nil {
		t.Fatalf("after the pull: %v", err)
	}
	if ok, err := pulled.IsUnpacked(ctx, images.Snapshotter); err != nil || !ok {
		t.Errorf("pulled image unpacked = %v, %v", ok, err)
	}
	if images.Imported(pulled) {
		t.Error("a pulled image is marked imported")
	}

	_, err = p.Pull(t.Context(), ns, reg.Host+"/weir/missing:v1")
	if !errdefs.IsNotFound(err) {
		t.Errorf("pull of a missing image: %v, want not found", err)
	}
	_, err = p.Pull(t.Context(), ns, "weir.local/nothing:v1")
	if !errors.Is(err, images.ErrLocalOnly) {
		t.Errorf("pull of a weir.local image: %v, want ErrLocalOnly", err)
	}
}

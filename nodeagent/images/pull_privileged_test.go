package images_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

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

// TestPullWithCredentials pulls from a real registry that requires a
// username and password (htpasswd): anonymously and with a wrong password
// the registry refuses; with the right credential the image arrives,
// also when a wrong credential for the same host comes first (each is
// tried in order) and when credentials for other hosts are given too.
// Pulls with different credentials are not merged into one.
func TestPullWithCredentials(t *testing.T) {
	d := containerdtest.Start(t)
	reg := registrytest.StartWithAuth(t, "weir", "s3cret")
	img, err := images.Busybox("")
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/weir/private:v1"
	img.Names = []string{ref}
	reg.Push(t, d.Client, img)

	p, err := images.NewPuller(d.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	right := reg.Credential()
	wrong := right
	wrong.Password = "wrong"
	other := images.Credential{Registry: "other.example", Username: "x", Password: "y"}
	// containerd says "no basic auth credentials" when it had none to
	// answer the registry's 401 with, and shows the 401 when the
	// registry refused the ones it sent.
	refused := func(err error) bool {
		s := strings.ToLower(fmt.Sprint(err))
		return err != nil && (strings.Contains(s, "401 unauthorized") || strings.Contains(s, "authorization failed: no basic auth credentials"))
	}
	tests := []struct {
		name  string
		creds []images.Credential
		ok    bool
	}{
		{"anonymous", nil, false},
		{"credentials for another registry only", []images.Credential{other}, false},
		{"wrong password", []images.Credential{wrong}, false},
		{"right credential", []images.Credential{other, right}, true},
		{"wrong, then right", []images.Credential{wrong, right}, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := fmt.Sprintf("weir-pull-auth-%d", i)
			got, err := p.Pull(t.Context(), ns, ref, tc.creds...)
			if !tc.ok {
				t.Logf("refused: %v", err)
				if !refused(err) {
					t.Fatalf("pull: %v, want the registry's refusal", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ctx := namespaces.WithNamespace(t.Context(), ns)
			if ok, err := got.IsUnpacked(ctx, images.Snapshotter); err != nil || !ok {
				t.Errorf("pulled image unpacked = %v, %v", ok, err)
			}
		})
	}

	// At once into one namespace, one pull anonymous and one with the
	// credential: both reach the registry (neither rides on the other's
	// result) and each gets its own answer.
	const ns = "weir-pull-auth-concurrent"
	held, release := reg.Hold()
	t.Cleanup(release)
	var wg sync.WaitGroup
	var anonErr, credErr error
	wg.Add(2)
	go func() { defer wg.Done(); _, credErr = p.Pull(t.Context(), ns, ref, right) }()
	go func() { defer wg.Done(); _, anonErr = p.Pull(t.Context(), ns, ref) }()
	deadline := time.Now().Add(20 * time.Second)
	for held() < 2 {
		if time.Now().After(deadline) {
			release()
			t.Fatalf("%d requests reached the registry within 20 s, want one per pull (2)", held())
		}
		time.Sleep(10 * time.Millisecond)
	}
	release()
	wg.Wait()
	if credErr != nil {
		t.Errorf("pull with the credential: %v", credErr)
	}
	if !refused(anonErr) {
		t.Errorf("concurrent anonymous pull: %v, want the registry's refusal", anonErr)
	}
}

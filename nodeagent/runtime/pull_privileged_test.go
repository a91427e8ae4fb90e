package runtime

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weir.dev/weir/nodeagent/containerd/containerdtest"
	"weir.dev/weir/nodeagent/images"
	"weir.dev/weir/nodeagent/images/registrytest"
	"weir.dev/weir/test/topology"
)

// events collects what a runtime records.
type events struct {
	mu  sync.Mutex
	all []string // "Reason: message"
}

func (e *events) record(_ *corev1.Pod, _, reason, msg string) {
	e.mu.Lock()
	e.all = append(e.all, reason+": "+msg)
	e.mu.Unlock()
}

// take returns the events since the last take.
func (e *events) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.all
	e.all = nil
	return out
}

func hasEventPrefix(evs []string, prefix string) bool {
	for _, e := range evs {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

// TestImagePull runs pods whose images come from a real registry on
// loopback (Debian's docker-registry): one present there runs; a missing
// one shows ErrImagePull, then ImagePullBackOff with a back-off of 10 s
// that doubles, with the kubelet's events, and runs once it has been
// pushed and the back-off has passed. The clock is the test's.
func TestImagePull(t *testing.T) {
	d := containerdtest.Start(t)
	reg := registrytest.Start(t)
	n := newTestNode(t, d, "10.244.21.0/24")
	var offset atomic.Int64
	var evs events
	n.rt.cfg.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	n.rt.cfg.Recorder = evs.record

	bb, err := images.Busybox("")
	if err != nil {
		t.Fatal(err)
	}
	push := func(ref string) {
		img := bb
		img.Names = []string{ref}
		reg.Push(t, d.Client, img)
	}
	present := reg.Host + "/weir/busybox:v1"
	push(present)
	manifest := func(repo, tag string) int {
		p := "/v2/" + repo + "/manifests/" + tag
		return reg.Requests("HEAD", p) + reg.Requests("GET", p)
	}
	running := func(st corev1.PodStatus) bool { return st.Phase == corev1.PodRunning }
	waiting := func(st corev1.PodStatus) *corev1.ContainerStateWaiting { return st.ContainerStatuses[0].State.Waiting }

	t.Run("pulled from the registry", func(t *testing.T) {
		pod := busyboxPod("pulled", "exec sleep 1000")
		pod.Spec.Containers[0].Image = present
		st := n.syncUntil(t, pod, 30*time.Second, running)
		if id := st.ContainerStatuses[0].ImageID; !strings.HasPrefix(id, reg.Host+"/weir/busybox@sha256:") {
			t.Errorf("imageID %q", id)
		}
		got := evs.take()
		for _, want := range []string{`Pulling: Pulling image "` + present + `"`, `Pulled: Successfully pulled image "` + present + `" in `, "Started: "} {
			if !hasEventPrefix(got, want) {
				t.Errorf("events %q lack %q", got, want)
			}
		}
		// IfNotPresent (the default for :v1): a second pod uses it as it is.
		before := manifest("weir/busybox", "v1")
		again := busyboxPod("again", "exec sleep 1000")
		again.Spec.Containers[0].Image = present
		n.syncUntil(t, again, 30*time.Second, running)
		if manifest("weir/busybox", "v1") != before {
			t.Error("IfNotPresent asked the registry for an image that is present")
		}
		if got := evs.take(); !hasEventPrefix(got, `Pulled: Container image "`+present+`" already present on machine`) {
			t.Errorf("events %q lack the already-present Pulled", got)
		}
		// Always asks the registry again, even with the image present.
		always := busyboxPod("always", "exec sleep 1000")
		always.Spec.Containers[0].Image = present
		always.Spec.Containers[0].ImagePullPolicy = corev1.PullAlways
		n.syncUntil(t, always, 30*time.Second, running)
		if manifest("weir/busybox", "v1") != before+1 {
			t.Errorf("Always resolved the tag %d times, want once", manifest("weir/busybox", "v1")-before)
		}
		if got := evs.take(); !hasEventPrefix(got, `Pulled: Successfully pulled image "`+present+`"`) {
			t.Errorf("Always: events %q lack Pulled", got)
		}
		// An imported image is used as it is under Always (the default
		// for `busybox`): there is no registry it came from.
		local := busyboxPod("local", "exec sleep 1000")
		if PullPolicy(&local.Spec.Containers[0]) != corev1.PullAlways {
			t.Fatalf("default pull policy of busybox: %s", PullPolicy(&local.Spec.Containers[0]))
		}
		n.syncUntil(t, local, 30*time.Second, running)
		if got := evs.take(); hasEventPrefix(got, "Pulling") {
			t.Errorf("an imported image was pulled: %q", got)
		}
	})

	t.Run("missing, then pushed", func(t *testing.T) {
		missing := reg.Host + "/weir/missing:v1"
		pod := busyboxPod("missing", "exec sleep 1000")
		pod.Spec.Containers[0].Image = missing
		sync := func() Result {
			t.Helper()
			res, err := n.rt.SyncPod(t.Context(), pod)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status.Phase != corev1.PodPending {
				t.Errorf("phase %s, want Pending", res.Status.Phase)
			}
			return res
		}
		// A failed pull shows ErrImagePull with the registry's answer and
		// asks for a sync soon, which shows ImagePullBackOff and does not
		// ask the registry again before the back-off ends.
		for i, backoff := range []time.Duration{10 * time.Second, 20 * time.Second} {
			asked := manifest("weir/missing", "v1")
			res := sync()
			w := waiting(res.Status)
			if w == nil || w.Reason != "ErrImagePull" || !strings.Contains(w.Message, "not found") {
				t.Fatalf("pull %d: %s", i+1, describe(res.Status))
			}
			if manifest("weir/missing", "v1") == asked {
				t.Errorf("pull %d: the registry was not asked", i+1)
			}
			if res.RequeueAfter != errImagePullShown {
				t.Errorf("pull %d: requeue after %v, want %v", i+1, res.RequeueAfter, errImagePullShown)
			}
			got := evs.take()
			for _, want := range []string{`Pulling: Pulling image "` + missing + `"`, `Failed: Failed to pull image "` + missing + `": `, "Failed: Error: ErrImagePull"} {
				if !hasEventPrefix(got, want) {
					t.Errorf("pull %d: events %q lack %q", i+1, got, want)
				}
			}
			asked = manifest("weir/missing", "v1")
			res = sync()
			w = waiting(res.Status)
			if w == nil || w.Reason != "ImagePullBackOff" || w.Message != `Back-off pulling image "`+missing+`"` {
				t.Fatalf("after pull %d: %s", i+1, describe(res.Status))
			}
			if res.RequeueAfter <= backoff-5*time.Second || res.RequeueAfter > backoff {
				t.Errorf("after pull %d: requeue after %v, want the back-off, %v", i+1, res.RequeueAfter, backoff)
			}
			if manifest("weir/missing", "v1") != asked {
				t.Errorf("after pull %d: the registry was asked during the back-off", i+1)
			}
			if got := evs.take(); !hasEventPrefix(got, `BackOff: Back-off pulling image "`+missing+`"`) || !hasEventPrefix(got, "Failed: Error: ImagePullBackOff") {
				t.Errorf("after pull %d: events %q lack BackOff and Error: ImagePullBackOff", i+1, got)
			}
			offset.Add(int64(backoff))
		}
		// Now it is there: the next attempt after the back-off pulls it.
		push(missing)
		n.syncUntil(t, pod, 30*time.Second, running)
		if got := evs.take(); !hasEventPrefix(got, `Pulled: Successfully pulled image "`+missing+`"`) {
			t.Errorf("events %q lack Pulled", got)
		}
	})
}

// TestCancelPull: a sync that waits for a registry that never answers
// returns, the container still waiting, once CancelPull says the pod is
// going away; the pod can then be removed.
func TestCancelPull(t *testing.T) {
	d := containerdtest.Start(t)
	n := newTestNode(t, d, "10.244.22.0/24")
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(topology.FreePort(t))))
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never answered
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for {
			select {
			case c := <-accepted:
				c.Close()
			default:
				return
			}
		}
	})
	pod := busyboxPod("stuck", "exec sleep 1000")
	pod.Spec.Containers[0].Image = ln.Addr().String() + "/weir/stuck:v1"
	type result struct {
		res Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := n.rt.SyncPod(t.Context(), pod)
		done <- result{res, err}
	}()
	select {
	case c := <-accepted:
		accepted <- c
	case r := <-done:
		t.Fatalf("sync returned without asking the registry: %v %s", r.err, describe(r.res.Status))
	case <-time.After(20 * time.Second):
		t.Fatal("the pull did not reach the registry within 20 s")
	}
	n.rt.CancelPull(pod.UID)
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if w := r.res.Status.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "ContainerCreating" {
			t.Errorf("after CancelPull: %s", describe(r.res.Status))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("sync still waits for the pull 20 s after CancelPull")
	}
	if err := n.rt.RemovePod(t.Context(), pod.UID); err != nil {
		t.Fatal(err)
	}
}

// TestImagePullSecrets runs pods whose image is in a real registry that
// requires a username and password (htpasswd): without imagePullSecrets
// the pull fails with the registry's refusal; with a dockerconfigjson
// secret (served by the test's Lookup) the pod runs; a pod naming a
// missing secret gets the kubelet's FailedToRetrieveImagePullSecret
// warning and its pull goes on anonymously, and fails; a malformed
// secret fails the pull with an error naming it.
func TestImagePullSecrets(t *testing.T) {
	d := containerdtest.Start(t)
	reg := registrytest.StartWithAuth(t, "weir", "pull-s3cret")
	n := newTestNode(t, d, "10.244.24.0/24")
	var evs events
	n.rt.cfg.Recorder = evs.record

	img, err := images.Busybox("")
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/weir/private:v1"
	img.Names = []string{ref}
	reg.Push(t, d.Client, img)

	secret := func(name string, typ corev1.SecretType, key string, data []byte) {
		n.lookup.secrets["default/"+name] = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Type: typ, Data: map[string][]byte{key: data}}
	}
	// The key as `kubectl create secret docker-registry --docker-server`
	// may write it: with a scheme.
	secret("regcred", corev1.SecretTypeDockerConfigJson, corev1.DockerConfigJsonKey, reg.DockerConfigJSON("http://"+reg.Host))
	secret("broken", corev1.SecretTypeDockerConfigJson, corev1.DockerConfigJsonKey, []byte(`{"auths":{"`+reg.Host+`":{"auth":"%%%"}}}`))

	mkPod := func(name string, secrets ...string) *corev1.Pod {
		pod := busyboxPod(name, "exec sleep 1000")
		pod.Spec.Containers[0].Image = ref
		for _, s := range secrets {
			pod.Spec.ImagePullSecrets = append(pod.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
		}
		return pod
	}
	pullFails := func(t *testing.T, pod *corev1.Pod, want string) []string {
		t.Helper()
		res, err := n.rt.SyncPod(t.Context(), pod)
		if err != nil {
			t.Fatal(err)
		}
		w := res.Status.ContainerStatuses[0].State.Waiting
		if w == nil || w.Reason != "ErrImagePull" || !strings.Contains(w.Message, want) {
			t.Fatalf("want ErrImagePull with %q: %s", want, describe(res.Status))
		}
		return evs.take()
	}
	const refusal = "authorization failed: no basic auth credentials"
	const warning = "FailedToRetrieveImagePullSecret: Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed."

	t.Run("no imagePullSecrets", func(t *testing.T) {
		got := pullFails(t, mkPod("anonymous"), refusal)
		if hasEventPrefix(got, "FailedToRetrieveImagePullSecret") {
			t.Errorf("events %q: a warning about secrets the pod does not name", got)
		}
	})
	t.Run("missing secret", func(t *testing.T) {
		got := pullFails(t, mkPod("missing", "nosuch", "alsonot"), refusal)
		want := fmt.Sprintf(warning, "nosuch, alsonot")
		if !slices.Contains(got, want) {
			t.Errorf("events %q lack %q", got, want)
		}
		if !hasEventPrefix(got, `Pulling: Pulling image "`+ref+`"`) {
			t.Errorf("events %q: the pull did not go on without the secrets", got)
		}
	})
	t.Run("malformed secret", func(t *testing.T) {
		got := pullFails(t, mkPod("malformed", "broken"), `image pull secret default/broken key .dockerconfigjson: auths["`+reg.Host+`"].auth: not base64`)
		if !hasEventPrefix(got, `Failed: Failed to pull image "`+ref+`": image pull secret default/broken`) {
			t.Errorf("events %q lack the Failed event naming the secret", got)
		}
	})
	t.Run("dockerconfigjson secret", func(t *testing.T) {
		// A missing secret before the good one only warns.
		pod := mkPod("private", "nosuch", "regcred")
		n.syncUntil(t, pod, 30*time.Second, func(st corev1.PodStatus) bool { return st.Phase == corev1.PodRunning })
		got := evs.take()
		for _, want := range []string{fmt.Sprintf(warning, "nosuch"), `Pulled: Successfully pulled image "` + ref + `"`} {
			if !hasEventPrefix(got, want) {
				t.Errorf("events %q lack %q", got, want)
			}
		}
	})
}

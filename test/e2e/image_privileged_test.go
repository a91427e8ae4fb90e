package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"weir.dev/weir/nodeagent/images"
	"weir.dev/weir/nodeagent/images/registrytest"
	"weir.dev/weir/test/cluster"
)

// Images on a weir up node: one served by a real registry (Debian's
// docker-registry) is pulled and runs; a missing one shows ErrImagePull,
// then ImagePullBackOff, the pod staying Pending, and runs once it has
// been pushed and the back-off has passed; a tarball loaded with
// `weir image import` runs with imagePullPolicy Never. From a registry
// that requires credentials, a pod without imagePullSecrets fails to pull
// with the registry's refusal, one naming a missing secret gets the
// FailedToRetrieveImagePullSecret warning event, and one naming a
// kubernetes.io/dockerconfigjson Secret runs: its node's agent read the
// Secret through the API server, which the node authorizer allows because
// the pod names it.
func TestImagesFromRegistryAndTarball(t *testing.T) {
	underlay := fmt.Sprintf("10.%d.%d.0/24", 200+rand.IntN(50), rand.IntN(256))
	gw := strings.TrimSuffix(underlay, "0/24") + "1"
	// Agents pull from inside their node's network namespace, where
	// loopback is the node's own: the registry listens on the underlay
	// gateway, which every node reaches, named insecure (plain HTTP). No
	// proxy stands between the nodes and the gateway.
	for _, v := range []string{"NO_PROXY", "no_proxy"} {
		t.Setenv(v, strings.Trim(os.Getenv(v)+","+gw, ","))
	}
	// The later --underlay wins over the one up picks.
	c := up(t, 1, "--underlay", underlay, "--insecure-registry", gw)
	node := c.NodePrefix + "1"
	reg := registrytest.StartOn(t, gw)
	cc, err := client.New(filepath.Join(c.DataDir, "containerd", "containerd.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	bb, err := images.Busybox("")
	if err != nil {
		t.Fatal(err)
	}
	push := func(ref string) {
		img := bb
		img.Names = []string{ref}
		reg.Push(t, cc, img)
	}
	present, missing := reg.Host+"/weir/busybox:v1", reg.Host+"/weir/missing:v1"
	push(present)

	ctx := t.Context()
	pods := c.Client.CoreV1().Pods("default")
	create := func(name, image string, policy corev1.PullPolicy) *corev1.Pod {
		p, err := pods.Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{NodeName: node, TerminationGracePeriodSeconds: ptr(int64(0)), Containers: []corev1.Container{{
				Name: "main", Image: image, ImagePullPolicy: policy, Command: []string{"sleep", "3600"}}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	running := func(name string) {
		t.Helper()
		cluster.Eventually(t, 60*time.Second, name+" runs", func() (bool, error) {
			p, err := pods.Get(ctx, name, metav1.GetOptions{})
			return err == nil && p.Status.Phase == corev1.PodRunning, err
		})
	}

	create("pulled", present, "")
	running("pulled")

	// The missing image: follow every status the agent writes.
	p := create("missing", missing, "")
	w, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", "missing").String(),
		ResourceVersion: p.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var reasons []string
	deadline := time.After(60 * time.Second)
	for len(reasons) < 2 || reasons[len(reasons)-1] != "ImagePullBackOff" {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch ended; reasons so far %v", reasons)
			}
			if ev.Type != watch.Modified {
				continue
			}
			pod := ev.Object.(*corev1.Pod)
			if pod.Status.Phase != corev1.PodPending {
				t.Fatalf("phase %s with a missing image", pod.Status.Phase)
			}
			for _, cs := range pod.Status.ContainerStatuses {
				if wt := cs.State.Waiting; wt != nil && (len(reasons) == 0 || reasons[len(reasons)-1] != wt.Reason) {
					reasons = append(reasons, wt.Reason)
					if wt.Reason == "ErrImagePull" && !strings.Contains(wt.Message, "not found") {
						t.Errorf("ErrImagePull message %q does not say not found", wt.Message)
					}
				}
			}
		case <-deadline:
			t.Fatalf("no ErrImagePull then ImagePullBackOff within 60 s; reasons %v", reasons)
		}
	}
	if i := len(reasons) - 2; reasons[i] != "ErrImagePull" {
		t.Errorf("waiting reasons %v, want ErrImagePull then ImagePullBackOff", reasons)
	}
	// Pushed now: the attempt after the back-off (10 s) pulls it.
	push(missing)
	running("missing")

	// A registry that requires credentials. weir has no `create secret
	// docker-registry`; the Secret is what kubectl's would be.
	priv := registrytest.StartWithAuthOn(t, gw, "weir", "e2e-s3cret")
	private := priv.Host + "/weir/private:v1"
	img0 := bb
	img0.Names = []string{private}
	priv.Push(t, cc, img0)
	if _, err := c.Client.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: priv.DockerConfigJSON(priv.Host)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	withSecrets := func(name string, secrets ...string) {
		spec := corev1.PodSpec{NodeName: node, TerminationGracePeriodSeconds: ptr(int64(0)), Containers: []corev1.Container{{
			Name: "main", Image: private, Command: []string{"sleep", "3600"}}}}
		for _, s := range secrets {
			spec.ImagePullSecrets = append(spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
		}
		if _, err := pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// First the pods without usable credentials: once one pod has pulled
	// the image it is present on the node for every pod (IfNotPresent),
	// as with the kubelet.
	withSecrets("private-anonymous")
	withSecrets("private-missing", "nosuch")
	// ErrImagePull shows for a moment only (then ImagePullBackOff): the
	// registry's refusal is looked for in the agent's Failed event.
	event := func(pod, reason, typ string, ok func(msg string) bool) {
		t.Helper()
		cluster.Eventually(t, 60*time.Second, pod+" has a "+reason+" event", func() (bool, error) {
			evs, err := c.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			for _, e := range evs.Items {
				if e.InvolvedObject.Name == pod && e.Reason == reason && e.Type == typ && ok(e.Message) {
					return true, nil
				}
			}
			return false, nil
		})
	}
	refused := func(msg string) bool {
		return strings.HasPrefix(msg, `Failed to pull image "`+private+`"`) && strings.Contains(msg, "no basic auth credentials")
	}
	event("private-anonymous", "Failed", corev1.EventTypeWarning, refused)
	event("private-missing", "FailedToRetrieveImagePullSecret", corev1.EventTypeWarning, func(msg string) bool {
		return msg == "Unable to retrieve some image pull secrets (nosuch); attempting to pull the image may not succeed."
	})
	event("private-missing", "Failed", corev1.EventTypeWarning, refused)
	for _, name := range []string{"private-anonymous", "private-missing"} {
		if p, err := pods.Get(ctx, name, metav1.GetOptions{}); err != nil || p.Status.Phase != corev1.PodPending {
			t.Fatalf("%s without usable credentials: %v %+v", name, err, p.Status)
		}
	}
	withSecrets("private", "regcred")
	running("private")

	// A tarball loaded with weir image import runs without a pull.
	img := bb
	img.Names = []string{"weir.local/imported:v1"}
	tarball := filepath.Join(t.TempDir(), "imported.tar")
	f, err := os.Create(tarball)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := images.Write(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command(weirBin, "image", "import", tarball, "--data-dir", c.DataDir).CombinedOutput()
	if err != nil || string(out) != "imported weir.local/imported:v1 on "+node+"\n" {
		t.Fatalf("weir image import: %v: %s", err, out)
	}
	create("imported", "weir.local/imported:v1", corev1.PullNever)
	running("imported")
}

package kubectl

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weir.dev/weir/test/cluster"
)

type kubectl struct {
	bin string
	env []string
}

// run runs kubectl and returns stdout, stderr and its exit error.
func (k *kubectl) run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), k.bin, args...)
	cmd.Env = k.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

func (k *kubectl) must(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := k.run(t, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx
  labels: {app: nginx}
spec:
  replicas: 2
  selector:
    matchLabels: {app: nginx}
  template:
    metadata:
      labels: {app: nginx}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
`

const service = `apiVersion: v1
kind: Service
metadata:
  name: nginx
spec:
  selector: {app: nginx}
  ports:
  - port: 80
    targetPort: 80
`

// TestRealKubectl runs the upstream kubectl against weir: get (table and
// yaml), create -f, apply -f with validation on, scale, label, rollout
// undo, describe and delete, asserting on what it prints.
func TestRealKubectl(t *testing.T) {
	bin := Build(t)
	s := cluster.Start(t, cluster.WithLoops(nil))
	home := t.TempDir()
	k := &kubectl{bin: bin, env: append(os.Environ(), "KUBECONFIG="+s.Kubeconfig, "HOME="+home)}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	deployFile := write("deploy.yaml", deployment)
	svcFile := write("svc.yaml", service)

	steps := []struct {
		name  string
		args  []string
		check func(t *testing.T, out string)
	}{
		{"version", []string{"version"}, func(t *testing.T, out string) {
			if !strings.Contains(out, "Client Version: v1.37") || !strings.Contains(out, "Server Version:") {
				t.Errorf("version:\n%s", out)
			}
		}},
		{"create -f", []string{"create", "-f", deployFile}, equal("deployment.apps/nginx created\n")},
		{"get table", []string{"get", "deployments"}, func(t *testing.T, out string) {
			lines := strings.Split(out, "\n")
			if lines[0] != "NAME    READY   UP-TO-DATE   AVAILABLE   AGE" || !strings.HasPrefix(lines[1], "nginx   0/2     0            0           ") {
				t.Errorf("get deployments:\n%s", out)
			}
		}},
		{"get wide", []string{"get", "deploy", "-o", "wide"}, func(t *testing.T, out string) {
			if !strings.Contains(out, "CONTAINERS   IMAGES       SELECTOR") || !strings.Contains(out, "nginx        nginx:1.25   app=nginx") {
				t.Errorf("get deploy -o wide:\n%s", out)
			}
		}},
		{"get yaml", []string{"get", "deploy", "nginx", "-o", "yaml"}, func(t *testing.T, out string) {
			for _, w := range []string{"apiVersion: apps/v1", "kind: Deployment", "  name: nginx", "  replicas: 2", "image: nginx:1.25"} {
				if !strings.Contains(out, w) {
					t.Errorf("get -o yaml lacks %q:\n%s", w, out)
				}
			}
		}},
		{"apply creates with validation", []string{"apply", "-f", svcFile}, equal("service/nginx created\n")},
		{"apply unchanged", []string{"apply", "-f", svcFile}, equal("service/nginx unchanged\n")},
		{"get services", []string{"get", "svc", "nginx"}, func(t *testing.T, out string) {
			if !strings.HasPrefix(out, "NAME    TYPE        CLUSTER-IP") || !strings.Contains(out, "<none>        80/TCP") {
				t.Errorf("get svc:\n%s", out)
			}
		}},
		{"scale", []string{"scale", "deployment", "nginx", "--replicas=3"}, equal("deployment.apps/nginx scaled\n")},
		{"label", []string{"label", "deployment", "nginx", "tier=web"}, equal("deployment.apps/nginx labeled\n")},
		{"get show-labels", []string{"get", "deploy", "--show-labels"}, func(t *testing.T, out string) {
			if !strings.Contains(out, "LABELS") || !strings.Contains(out, "app=nginx,tier=web") || !strings.Contains(out, "0/3") {
				t.Errorf("get --show-labels:\n%s", out)
			}
		}},
		{"describe", []string{"describe", "deployment", "nginx"}, func(t *testing.T, out string) {
			if !strings.Contains(out, "Name:                   nginx") || !strings.Contains(out, "3 desired") {
				t.Errorf("describe:\n%s", out)
			}
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) { st.check(t, k.must(t, st.args...)) })
	}

	t.Run("apply configures with validation", func(t *testing.T) {
		k.must(t, "apply", "-f", deployFile) // adopts the created object
		write("deploy.yaml", strings.Replace(deployment, "image: nginx:1.25", "image: nginx:1.26", 1))
		if out := k.must(t, "apply", "-f", deployFile); out != "deployment.apps/nginx configured\n" {
			t.Fatalf("apply: %q", out)
		}
		bad := write("bad.yaml", strings.Replace(service, "targetPort: 80", "targetPort: 80\n    bogus: 1", 1))
		_, errOut, err := k.run(t, "apply", "-f", bad)
		if err == nil || !strings.Contains(errOut, "bogus") {
			t.Fatalf("apply of an unknown field: %v\n%s", err, errOut)
		}
	})

	t.Run("rollout undo", func(t *testing.T) {
		c := s.Client(t)
		ctx := t.Context()
		d, err := c.AppsV1().Deployments("default").Get(ctx, "nginx", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Two revisions as the Deployment controller records them.
		for rev, image := range map[string]string{"1": "nginx:1.24", "2": "nginx:1.26"} {
			tmpl := d.Spec.Template.DeepCopy()
			tmpl.Spec.Containers[0].Image = image
			tmpl.Labels = map[string]string{"app": "nginx", "pod-template-hash": "h" + rev}
			rs := &appsv1.ReplicaSet{
				ObjectMeta: metav1.ObjectMeta{Name: "nginx-h" + rev, Namespace: "default", Labels: tmpl.Labels,
					Annotations:     map[string]string{"deployment.kubernetes.io/revision": rev},
					OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))}},
				Spec: appsv1.ReplicaSetSpec{Replicas: d.Spec.Replicas, Selector: &metav1.LabelSelector{MatchLabels: tmpl.Labels}, Template: *tmpl},
			}
			if _, err := c.AppsV1().ReplicaSets("default").Create(ctx, rs, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if out := k.must(t, "rollout", "undo", "deployment/nginx", "--to-revision=1"); out != "deployment.apps/nginx rolled back\n" {
			t.Fatalf("rollout undo: %q", out)
		}
		d, err = c.AppsV1().Deployments("default").Get(ctx, "nginx", metav1.GetOptions{})
		if err != nil || d.Spec.Template.Spec.Containers[0].Image != "nginx:1.24" {
			t.Fatalf("after undo: %v %v", err, d.Spec.Template.Spec.Containers)
		}
		if out := k.must(t, "rollout", "history", "deployment/nginx"); !strings.Contains(out, "REVISION  CHANGE-CAUSE") {
			t.Fatalf("rollout history:\n%s", out)
		}
	})

	t.Run("get -w", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, k.bin, "get", "pods", "-w")
		cmd.Env = k.env
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		lines := make(chan string, 16)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		time.Sleep(500 * time.Millisecond)
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "watched"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if _, err := s.Client(t).CoreV1().Pods("default").Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var seen []string
		for l := range lines {
			seen = append(seen, l)
			if strings.HasPrefix(l, "watched") && strings.Contains(l, "Pending") {
				if !strings.HasPrefix(seen[0], "NAME") || !strings.Contains(seen[0], "RESTARTS") {
					t.Errorf("no table header: %q", seen)
				}
				return
			}
		}
		t.Fatalf("kubectl get pods -w printed no row for the new pod: %q", seen)
	})

	t.Run("errors", func(t *testing.T) {
		_, errOut, err := k.run(t, "get", "deployment", "missing")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("get missing: %v", err)
		}
		if strings.TrimSpace(errOut) != `Error from server (NotFound): deployments.apps "missing" not found` {
			t.Fatalf("stderr %q", errOut)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if out := k.must(t, "delete", "-f", deployFile); out != "deployment.apps \"nginx\" deleted from default namespace\n" {
			t.Fatalf("delete -f: %q", out)
		}
		if out := k.must(t, "delete", "service", "nginx"); out != "service \"nginx\" deleted from default namespace\n" {
			t.Fatalf("delete service: %q", out)
		}
		_, errOut, _ := k.run(t, "get", "deploy,svc")
		if !strings.Contains(errOut, "No resources found in default namespace.") {
			t.Fatalf("after delete: %q", errOut)
		}
	})
}

func equal(want string) func(t *testing.T, out string) {
	return func(t *testing.T, out string) {
		t.Helper()
		if out != want {
			t.Errorf("got %q, want %q", out, want)
		}
	}
}

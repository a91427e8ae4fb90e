package app

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weir.dev/weir/nodeagent/images"
	"weir.dev/weir/test/cluster"
)

// weir runs the weir command tree in-process against s, as a user would
// run the binary: it returns stdout, stderr and the error main would print
// (non-nil means a non-zero exit).
func weir(t *testing.T, s *cluster.Server, stdin string, args ...string) (string, string, error) {
	t.Helper()
	return weirCtx(t.Context(), s, stdin, args...)
}

func weirCtx(ctx context.Context, s *cluster.Server, stdin string, args ...string) (string, string, error) {
	root := NewRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"--kubeconfig", s.Kubeconfig}, args...))
	err := root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func mustWeir(t *testing.T, s *cluster.Server, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := weir(t, s, stdin, args...)
	if err != nil {
		t.Fatalf("weir %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const nginxV1 = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx
  labels: {app: nginx, tier: web}
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
        env:
        - {name: MODE, value: prod}
        - {name: DEBUG, value: "0"}
---
apiVersion: v1
kind: Service
metadata:
  name: nginx
spec:
  selector: {app: nginx}
  ports:
  - port: 80
`

// TestApply is the apply suite: created, unchanged, configured, a field
// removed from the file leaves the object, multi-document files,
// directories, stdin, dry runs, and a bad document.
func TestApply(t *testing.T) {
	// The workload controllers would write status behind the test.
	s := cluster.Start(t, cluster.WithLoops(cluster.APILoops()))
	c := s.Client(t)
	ctx := t.Context()
	dir := t.TempDir()
	f := writeFile(t, dir, "nginx.yaml", nginxV1)

	steps := []struct {
		name  string
		file  string // contents written to nginx.yaml before the step
		want  string
		check func(t *testing.T)
	}{
		{name: "create", file: nginxV1, want: "deployment.apps/nginx created\nservice/nginx created\n"},
		{name: "same file unchanged", file: nginxV1, want: "deployment.apps/nginx unchanged\nservice/nginx unchanged\n"},
		{name: "field changed", file: strings.Replace(nginxV1, "replicas: 2", "replicas: 3", 1),
			want: "deployment.apps/nginx configured\nservice/nginx unchanged\n",
			check: func(t *testing.T) {
				d, err := c.AppsV1().Deployments("default").Get(ctx, "nginx", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if *d.Spec.Replicas != 3 {
					t.Errorf("replicas %d, want 3", *d.Spec.Replicas)
				}
			}},
		{name: "fields removed from the file", file: strings.NewReplacer("replicas: 2", "replicas: 3",
			"labels: {app: nginx, tier: web}", "labels: {app: nginx}",
			"        - {name: DEBUG, value: \"0\"}\n", "").Replace(nginxV1),
			want: "deployment.apps/nginx configured\nservice/nginx unchanged\n",
			check: func(t *testing.T) {
				d, err := c.AppsV1().Deployments("default").Get(ctx, "nginx", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := d.Labels["tier"]; ok {
					t.Errorf("label tier still set: %v", d.Labels)
				}
				env := d.Spec.Template.Spec.Containers[0].Env
				if len(env) != 1 || env[0].Name != "MODE" {
					t.Errorf("env %v, want only MODE", env)
				}
				if d.Annotations["owner"] != "ops" {
					t.Errorf("an annotation set outside the file was lost: %v", d.Annotations)
				}
			}},
	}
	for i, st := range steps {
		if i == 3 {
			// A field the file never had is kept by the three-way merge.
			mustWeir(t, s, "", "annotate", "deploy", "nginx", "owner=ops")
		}
		writeFile(t, dir, "nginx.yaml", st.file)
		t.Run(st.name, func(t *testing.T) {
			if got := mustWeir(t, s, "", "apply", "-f", f); got != st.want {
				t.Fatalf("got %q, want %q", got, st.want)
			}
			if st.check != nil {
				st.check(t)
			}
		})
	}

	t.Run("directory", func(t *testing.T) {
		d := t.TempDir()
		writeFile(t, d, "a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dir-a}\ndata: {k: v}\n")
		writeFile(t, d, "b.json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dir-b"}}`)
		writeFile(t, d, "notes.txt", "not a manifest")
		if got, want := mustWeir(t, s, "", "apply", "-f", d), "configmap/dir-a created\nconfigmap/dir-b created\n"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		in := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-stdin}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-stdin-2}\n"
		if got, want := mustWeir(t, s, in, "apply", "-f", "-"), "configmap/from-stdin created\nconfigmap/from-stdin-2 created\n"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("dry runs create nothing", func(t *testing.T) {
		in := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry}\n"
		if got, want := mustWeir(t, s, in, "apply", "-f", "-", "--dry-run=client"), "configmap/dry created (dry run)\n"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
		if got, want := mustWeir(t, s, in, "apply", "-f", "-", "--dry-run=server"), "configmap/dry created (server dry run)\n"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
		if _, err := c.CoreV1().ConfigMaps("default").Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("dry run created the object: %v", err)
		}
	})
	bad := []struct {
		name, file, wantErr string
		created             []string // objects the verb may still create
	}{
		{name: "unknown field", wantErr: `bad.yaml" (document 2): error validating data: unknown field "datta"`,
			file: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad-1}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad-2}\ndatta: {k: v}\n"},
		{name: "unknown kind", wantErr: `no matches for kind "Widget"`,
			file: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad-1}\n---\napiVersion: v1\nkind: Widget\nmetadata: {name: w}\n"},
		{name: "not yaml", wantErr: `bad.yaml" (document 2): error converting YAML to JSON`,
			file: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad-1}\n---\n: [\n"},
		{name: "missing kind", wantErr: "kind not set",
			file: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad-1}\n---\napiVersion: v1\nmetadata: {name: x}\n"},
		{name: "refused by the server", wantErr: "bad.yaml\" (document 2): The Service \"bad-svc\" is invalid: \n* spec.ports[0].port: Invalid value: 70000",
			file:    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad-1}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: bad-svc}\nspec: {ports: [{port: 70000}]}\n",
			created: []string{"bad-1"}},
	}
	for _, tc := range bad {
		t.Run("bad document: "+tc.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "bad.yaml", tc.file)
			_, _, err := weir(t, s, "", "apply", "-f", p)
			if err == nil {
				t.Fatal("apply succeeded; want a non-zero exit")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tc.wantErr)
			}
			_, gerr := c.CoreV1().ConfigMaps("default").Get(ctx, "bad-1", metav1.GetOptions{})
			if len(tc.created) == 0 && !apierrors.IsNotFound(gerr) {
				t.Fatalf("a document before the bad one was applied: %v", gerr)
			}
			if len(tc.created) > 0 {
				if gerr != nil {
					t.Fatalf("the good document was not applied: %v", gerr)
				}
				_ = c.CoreV1().ConfigMaps("default").Delete(ctx, "bad-1", metav1.DeleteOptions{})
			}
		})
	}
}

// TestVerbs drives the other verbs through the command tree and checks
// their output and effect.
func TestVerbs(t *testing.T) {
	// The workload controllers would write status behind the test.
	s := cluster.Start(t, cluster.WithLoops(cluster.APILoops()))
	c := s.Client(t)
	ctx := t.Context()
	f := writeFile(t, t.TempDir(), "nginx.yaml", nginxV1)
	mustWeir(t, s, "", "create", "-f", f)

	if _, _, err := weir(t, s, "", "create", "-f", f); err == nil || !strings.Contains(err.Error(), `Error from server (AlreadyExists): error when creating "`) {
		t.Fatalf("second create: %v", err)
	}
	if _, _, err := weir(t, s, "", "get", "deploy", "missing"); err == nil || err.Error() != `Error from server (NotFound): deployments.apps "missing" not found` {
		t.Fatalf("get missing: %v", err)
	}
	out := mustWeir(t, s, "", "get", "deploy")
	if !strings.HasPrefix(out, "NAME    READY   UP-TO-DATE   AVAILABLE   AGE\nnginx   0/2") {
		t.Fatalf("get deploy:\n%s", out)
	}
	out = mustWeir(t, s, "", "get", "svc", "nginx", "-o", "wide")
	if !strings.HasPrefix(out, "NAME    TYPE        CLUSTER-IP") || !strings.Contains(out, "SELECTOR") || !strings.Contains(out, "app=nginx") {
		t.Fatalf("get svc -o wide:\n%s", out)
	}
	if got := mustWeir(t, s, "", "get", "deploy/nginx", "svc/nginx", "-o", "name"); got != "deployment.apps/nginx\nservice/nginx\n" {
		t.Fatalf("-o name: %q", got)
	}
	if got := mustWeir(t, s, "", "get", "deploy", "nginx", "-o", "jsonpath={.spec.template.spec.containers[0].image}"); got != "nginx:1.25" {
		t.Fatalf("jsonpath: %q", got)
	}
	if out := mustWeir(t, s, "", "describe", "deploy", "nginx"); !strings.Contains(out, "Replicas:               2 desired") {
		t.Fatalf("describe:\n%s", out)
	}
	if got := mustWeir(t, s, "", "scale", "deploy", "nginx", "--replicas=4"); got != "deployment.apps/nginx scaled\n" {
		t.Fatalf("scale: %q", got)
	}
	if got := mustWeir(t, s, "", "set", "image", "deploy/nginx", "nginx=nginx:1.26"); got != "deployment.apps/nginx image updated\n" {
		t.Fatalf("set image: %q", got)
	}
	d, err := c.AppsV1().Deployments("default").Get(ctx, "nginx", metav1.GetOptions{})
	if err != nil || *d.Spec.Replicas != 4 || d.Spec.Template.Spec.Containers[0].Image != "nginx:1.26" {
		t.Fatalf("after scale and set image: %v %+v", err, d.Spec)
	}
	if got := mustWeir(t, s, "", "label", "deploy", "nginx", "team=a"); got != "deployment.apps/nginx labeled\n" {
		t.Fatalf("label: %q", got)
	}
	if _, _, err := weir(t, s, "", "label", "deploy", "nginx", "team=b"); err == nil || !strings.Contains(err.Error(), "'team' already has a value (a), and --overwrite is false") {
		t.Fatalf("label without --overwrite: %v", err)
	}
	mustWeir(t, s, "", "label", "deploy", "nginx", "team=b", "--overwrite")
	if got := mustWeir(t, s, "", "label", "deploy", "nginx", "team-"); got != "deployment.apps/nginx unlabeled\n" {
		t.Fatalf("label remove: %q", got)
	}
	if got := mustWeir(t, s, "", "expose", "deployment", "nginx", "--port", "8080", "--target-port", "80", "--name", "nginx-ext", "--type", "NodePort"); got != "service/nginx-ext exposed\n" {
		t.Fatalf("expose: %q", got)
	}
	svc, err := c.CoreV1().Services("default").Get(ctx, "nginx-ext", metav1.GetOptions{})
	if err != nil || svc.Spec.Type != corev1.ServiceTypeNodePort || svc.Spec.Ports[0].Port != 8080 || svc.Spec.Ports[0].TargetPort.IntValue() != 80 || svc.Spec.Selector["app"] != "nginx" {
		t.Fatalf("exposed service: %v %+v", err, svc.Spec)
	}
	if got := mustWeir(t, s, "", "run", "bb", "--image", "busybox", "--", "sleep", "3600"); got != "pod/bb created\n" {
		t.Fatalf("run: %q", got)
	}
	if _, _, err := weir(t, s, "", "logs", "bb"); err == nil || err.Error() != "Error from server (BadRequest): pod bb does not have a host assigned" {
		t.Fatalf("logs: %v", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--since=1h", "--since-time=2026-01-02T03:04:05Z"}, "error: at most one of `sinceTime` or `sinceSeconds` may be specified"},
		{[]string{"--since=-1s"}, "error: --since must be greater than 0"},
		{[]string{"--since-time=yesterday"}, `error: --since-time: "yesterday" is not an RFC3339 time`},
		// Valid: the request goes out and meets the unscheduled pod.
		{[]string{"--since=1h", "--timestamps"}, "Error from server (BadRequest): pod bb does not have a host assigned"},
		{[]string{"--since-time=2026-01-02T03:04:05.5+01:00"}, "Error from server (BadRequest): pod bb does not have a host assigned"},
	} {
		if _, _, err := weir(t, s, "", append([]string{"logs", "bb"}, tc.args...)...); err == nil || err.Error() != tc.want {
			t.Errorf("logs bb %v: %v, want %q", tc.args, err, tc.want)
		}
	}
	// create secret docker-registry writes what the agent pulls with.
	if got := mustWeir(t, s, "", "create", "secret", "docker-registry", "regcred", "--docker-server=10.99.0.1:5000",
		"--docker-username=weir", "--docker-password=s3cret"); got != "secret/regcred created\n" {
		t.Fatalf("create secret docker-registry: %q", got)
	}
	sec, err := c.CoreV1().Secrets("default").Get(ctx, "regcred", metav1.GetOptions{})
	if err != nil || sec.Type != corev1.SecretTypeDockerConfigJson {
		t.Fatalf("regcred: %v %+v", err, sec)
	}
	creds, err := images.SecretCredentials(sec)
	if err != nil || len(creds) != 1 || creds[0].Username != "weir" || creds[0].Password != "s3cret" || len(images.MatchCredentials(creds, "10.99.0.1:5000")) != 1 {
		t.Fatalf("regcred credentials %+v, %v", creds, err)
	}
	if _, _, err := weir(t, s, "", "create", "secret", "docker-registry", "nocred", "--docker-server=x"); err == nil ||
		!strings.Contains(err.Error(), `required flag(s) "docker-password", "docker-username" not set`) {
		t.Fatalf("create secret docker-registry without credentials: %v", err)
	}
	if got := mustWeir(t, s, "", "create", "secret", "generic", "app", "--from-literal=user=admin", "--from-literal=pass=a=b"); got != "secret/app created\n" {
		t.Fatalf("create secret generic: %q", got)
	}
	if sec, err := c.CoreV1().Secrets("default").Get(ctx, "app", metav1.GetOptions{}); err != nil || sec.Type != corev1.SecretTypeOpaque ||
		string(sec.Data["user"]) != "admin" || string(sec.Data["pass"]) != "a=b" {
		t.Fatalf("app secret: %v %+v", err, sec)
	}
	if _, _, err := weir(t, s, "", "create", "secret", "generic", "bad", "--from-literal=novalue"); err == nil ||
		err.Error() != "error: invalid literal source novalue, expected key=value" {
		t.Fatalf("create secret generic with a bad literal: %v", err)
	}
	if _, err := c.CoreV1().Secrets("default").Get(ctx, "bad", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a refused create secret wrote one: %v", err)
	}
	if got := mustWeir(t, s, "", "delete", "pod", "bb"); got != "pod \"bb\" deleted from default namespace\n" {
		t.Fatalf("delete: %q", got)
	}
	if got := mustWeir(t, s, "", "delete", "-f", f, "--cascade=orphan"); got != "deployment.apps \"nginx\" deleted from default namespace\nservice \"nginx\" deleted from default namespace\n" {
		t.Fatalf("delete -f: %q", got)
	}
	if _, _, err := weir(t, s, "", "delete", "svc", "nginx"); err == nil || err.Error() != `Error from server (NotFound): services "nginx" not found` {
		t.Fatalf("delete missing: %v", err)
	}
}

// TestRollout: history, undo to a revision and status over ReplicaSets
// written as the Deployment controller writes them.
func TestRollout(t *testing.T) {
	// No controllers: the test writes the ReplicaSets the Deployment
	// controller would, so the revisions are exactly the ones below.
	s := cluster.Start(t, cluster.WithLoops(nil))
	c := s.Client(t)
	ctx := t.Context()
	f := writeFile(t, t.TempDir(), "nginx.yaml", nginxV1)
	mustWeir(t, s, "", "apply", "-f", f)
	d, err := c.AppsV1().Deployments("default").Get(ctx, "nginx", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Two revisions, as the Deployment controller would record them.
	for rev, image := range map[string]string{"1": "nginx:1.24", "2": "nginx:1.25"} {
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
	if got, want := mustWeir(t, s, "", "rollout", "history", "deploy/nginx"), "deployment.apps/nginx \nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>\n\n"; got != want {
		t.Fatalf("history %q, want %q", got, want)
	}
	if got := mustWeir(t, s, "", "rollout", "undo", "deploy/nginx", "--to-revision=2"); got != "deployment.apps/nginx skipped rollback (current template already matches revision 2)\n" {
		t.Fatalf("undo to the current revision: %q", got)
	}
	if got := mustWeir(t, s, "", "rollout", "undo", "deploy/nginx", "--to-revision=1"); got != "deployment.apps/nginx rolled back\n" {
		t.Fatalf("undo: %q", got)
	}
	d, err = c.AppsV1().Deployments("default").Get(ctx, "nginx", metav1.GetOptions{})
	if err != nil || d.Spec.Template.Spec.Containers[0].Image != "nginx:1.24" {
		t.Fatalf("after undo: %v %v", err, d.Spec.Template.Spec.Containers)
	}
	if _, ok := d.Spec.Template.Labels["pod-template-hash"]; ok {
		t.Errorf("undo copied the pod-template-hash label: %v", d.Spec.Template.Labels)
	}
	if _, _, err := weir(t, s, "", "rollout", "undo", "deploy/nginx", "--to-revision=9"); err == nil || err.Error() != "error: unable to find specified revision 9 in history" {
		t.Fatalf("undo to a missing revision: %v", err)
	}
	// Status: finished once the status says every replica is updated and available.
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2, ReadyReplicas: 2}
	if _, err := c.AppsV1().Deployments("default").UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := mustWeir(t, s, "", "rollout", "status", "deploy/nginx", "--timeout=20s"); !strings.HasSuffix(got, "deployment \"nginx\" successfully rolled out\n") {
		t.Fatalf("status: %q", got)
	}
	mustWeir(t, s, "", "rollout", "pause", "deploy/nginx")
	if _, _, err := weir(t, s, "", "rollout", "undo", "deploy/nginx"); err == nil || !strings.Contains(err.Error(), "paused") {
		t.Fatalf("undo of a paused deployment: %v", err)
	}
	mustWeir(t, s, "", "rollout", "resume", "deploy/nginx")
	if got := mustWeir(t, s, "", "rollout", "restart", "deploy/nginx"); got != "deployment.apps/nginx restarted\n" {
		t.Fatalf("restart: %q", got)
	}
}

// TestGetWatch is acceptance 5: weir get pods -w prints a line when a pod
// changes, within the test's deadline.
func TestGetWatch(t *testing.T) {
	// The test sets pod status itself; the scheduler must not race it.
	s := cluster.Start(t, cluster.WithLoops(cluster.LoopsWithout("scheduler")))
	c := s.Client(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	root := NewRootCommand()
	root.SetOut(pw)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"--kubeconfig", s.Kubeconfig, "get", "pods", "-w"})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = root.ExecuteContext(ctx)
		pw.Close()
	}()
	lines := make(chan string, 16)
	go func() {
		buf := make([]byte, 0, 4096)
		one := make([]byte, 1)
		for {
			if _, err := pr.Read(one); err != nil {
				close(lines)
				return
			}
			if one[0] == '\n' {
				lines <- string(buf)
				buf = buf[:0]
				continue
			}
			buf = append(buf, one[0])
		}
	}()
	next := func(what string) string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s: the watch ended", what)
			}
			return l
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: no line within 15 s", what)
		}
		return ""
	}
	// Give the watch a moment to open, then change a pod twice.
	time.Sleep(300 * time.Millisecond)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "watched"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if _, err := c.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if h := next("header"); !strings.HasPrefix(h, "NAME") || !strings.Contains(h, "STATUS") {
		t.Fatalf("header %q", h)
	}
	if l := next("added"); !strings.HasPrefix(l, "watched") || !strings.Contains(l, "Pending") {
		t.Fatalf("added row %q", l)
	}
	cur, err := c.CoreV1().Pods("default").Get(ctx, "watched", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Status.Phase = corev1.PodFailed
	if _, err := c.CoreV1().Pods("default").UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if l := next("modified"); !strings.HasPrefix(l, "watched") || !strings.Contains(l, "Failed") {
		t.Fatalf("modified row %q", l)
	}
	cancel()
	pr.Close()
	wg.Wait()
}

package localcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"weir.dev/weir/nodeagent/simnode"
)

// Demo shows a Service answering on a running local cluster: a
// Deployment of the echo image (three replicas, scheduled over the nodes,
// run by their agents through containerd), a Service selecting it (its
// EndpointSlice written by the controller), and requests to the ClusterIP
// from the first node, as a process in that node's cgroup — where the
// eBPF socket load balancer picks a pod at connect(). It removes what it
// made before returning.
func Demo(ctx context.Context, dataDir string, out io.Writer) error {
	var l layout
	b, err := os.ReadFile(layoutFile(dataDir))
	if err != nil {
		return fmt.Errorf("no cluster in %s (run weir up first): %w", dataDir, err)
	}
	if err := json.Unmarshal(b, &l); err != nil || len(l.Nodes) == 0 {
		return fmt.Errorf("read %s: %v", layoutFile(dataDir), err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dataDir, "admin.kubeconfig"))
	if err != nil {
		return err
	}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	labels := map[string]string{"app": "weir-demo"}
	replicas := int32(3)
	deploys := c.AppsV1().Deployments("default")
	if _, err := deploys.Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "weir-demo"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "echo", Image: "weir.local/echo:latest", ImagePullPolicy: corev1.PullNever,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}},
			},
		},
	}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create the demo deployment: %w", err)
	}
	defer func() {
		fg := metav1.DeletePropagationForeground
		_ = deploys.Delete(context.WithoutCancel(ctx), "weir-demo", metav1.DeleteOptions{PropagationPolicy: &fg})
	}()
	svcs := c.CoreV1().Services("default")
	svc, err := svcs.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "weir-demo"},
		Spec: corev1.ServiceSpec{Selector: labels,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create the demo service: %w", err)
	}
	defer func() { _ = svcs.Delete(context.WithoutCancel(ctx), "weir-demo", metav1.DeleteOptions{}) }()

	// Wait for the three pods to be ready endpoints.
	deadline := time.Now().Add(120 * time.Second)
	for {
		pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=weir-demo"})
		ready := 0
		if err == nil {
			for _, p := range pods.Items {
				for _, cond := range p.Status.Conditions {
					if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
						ready++
					}
				}
			}
		}
		if ready == int(replicas) {
			for _, p := range pods.Items {
				fmt.Fprintf(out, "pod %s on node %s at %s\n", p.Name, p.Spec.NodeName, p.Status.PodIP)
			}
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo pods not ready after 120 s (%d of %d)", ready, replicas)
		}
		time.Sleep(250 * time.Millisecond)
	}

	client := l.Nodes[0]
	url := "http://" + net.JoinHostPort(svc.Spec.ClusterIP, "80") + "/"
	fmt.Fprintf(out, "Service default/weir-demo ClusterIP %s; asking it from node %s:\n", svc.Spec.ClusterIP, client)
	cg := filepath.Join(simnode.CgroupRoot, "weir", client)
	deadline = time.Now().Add(60 * time.Second)
	answered := 0
	for answered < 6 {
		body, err := getFrom(client, cg, url)
		if err != nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("GET %s from node %s: %w", url, client, err)
			}
			time.Sleep(200 * time.Millisecond)
			continue
		}
		answered++
		fmt.Fprintf(out, "GET %s -> %s\n", url, strings.TrimSpace(body))
	}
	return nil
}

// getFrom does one HTTP GET from inside node's namespace, as a process in
// its cgroup (when the cgroup exists: the eBPF data plane made it).
func getFrom(node, cgroup, url string) (string, error) {
	if _, err := os.Stat(cgroup); err == nil {
		restore, err := simnode.JoinCgroup(cgroup)
		if err != nil {
			return "", err
		}
		defer restore()
	}
	var body string
	err := (&simnode.Node{Netns: simnode.NetnsName(node)}).Do(func() error {
		// One raw HTTP/1.0 exchange: no proxies, keep-alives or extra
		// goroutines, so the connect happens on this thread, inside the
		// namespace.
		conn, err := net.DialTimeout("tcp", strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"), 2*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Close = true
		if err := req.Write(conn); err != nil {
			return err
		}
		b, err := io.ReadAll(conn)
		if err != nil {
			return err
		}
		_, rest, ok := strings.Cut(string(b), "\r\n\r\n")
		if !ok {
			return fmt.Errorf("malformed HTTP answer %q", b)
		}
		body = rest
		return nil
	})
	return body, err
}

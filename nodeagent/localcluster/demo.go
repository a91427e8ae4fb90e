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
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Demo shows a Service answering on a running local cluster: a
// Deployment of the echo image (three replicas, scheduled over the nodes,
// run by their agents through containerd), a NodePort Service selecting
// it (its EndpointSlice written by the controller), requests to the
// ClusterIP from a client pod (busybox wget: the eBPF socket load balancer
// picks a pod at its connect()), and requests from this host, outside
// every node, to each node's address and the nodePort (the uplink's TC
// programs translate them per packet; iptables clusters use kube-proxy's
// rules). It removes what it made before returning.
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
	// What an interrupted earlier demo left goes first, so the demo can
	// be run again.
	if err := removeDemo(ctx, c); err != nil {
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
		Spec: corev1.ServiceSpec{Selector: labels, Type: corev1.ServiceTypeNodePort,
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

	if err := askFromPod(ctx, c, svc, out); err != nil {
		return err
	}
	return askNodePorts(ctx, c, svc, out)
}

// askFromPod runs a busybox pod that asks the ClusterIP six times and
// prints what it logged.
func askFromPod(ctx context.Context, c kubernetes.Interface, svc *corev1.Service, out io.Writer) error {
	url := "http://" + net.JoinHostPort(svc.Spec.ClusterIP, "80") + "/"
	pods := c.CoreV1().Pods("default")
	script := "for i in 1 2 3 4 5 6; do wget -q -O - " + url + " || echo failed; done"
	if _, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "weir-demo-client"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
			Name: "wget", Image: "weir.local/busybox:latest", ImagePullPolicy: corev1.PullNever,
			Command: []string{"sh", "-c", script},
		}}},
	}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create the demo client pod: %w", err)
	}
	defer func() {
		zero := int64(0)
		_ = pods.Delete(context.WithoutCancel(ctx), "weir-demo-client", metav1.DeleteOptions{GracePeriodSeconds: &zero})
	}()
	deadline := time.Now().Add(120 * time.Second)
	var p *corev1.Pod
	for {
		var err error
		p, err = pods.Get(ctx, "weir-demo-client", metav1.GetOptions{})
		if err == nil && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo client pod did not finish in 120 s")
		}
		time.Sleep(250 * time.Millisecond)
	}
	logs, err := pods.GetLogs("weir-demo-client", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("logs of the demo client pod: %w", err)
	}
	fmt.Fprintf(out, "Service default/weir-demo ClusterIP %s; asking it from pod weir-demo-client on node %s:\n", svc.Spec.ClusterIP, p.Spec.NodeName)
	for _, line := range strings.Split(strings.TrimSpace(string(logs)), "\n") {
		fmt.Fprintf(out, "GET %s -> %s\n", url, strings.TrimSpace(line))
	}
	if p.Status.Phase != corev1.PodSucceeded || strings.Contains(string(logs), "failed") {
		return fmt.Errorf("the demo client pod could not reach the ClusterIP (phase %s)", p.Status.Phase)
	}
	return nil
}

// askNodePorts asks every node's InternalIP at the nodePort from this
// host, which sits on the underlay outside every node.
func askNodePorts(ctx context.Context, c kubernetes.Interface, svc *corev1.Service, out io.Writer) error {
	nodePort := svc.Spec.Ports[0].NodePort
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "NodePort %d; asking each node from this host:\n", nodePort)
	for _, n := range nodes.Items {
		var ip string
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				ip = a.Address
			}
		}
		if ip == "" {
			continue
		}
		addr := net.JoinHostPort(ip, strconv.Itoa(int(nodePort)))
		deadline := time.Now().Add(60 * time.Second)
		for answered := 0; answered < 2; {
			body, err := httpGet(addr)
			if err != nil {
				if time.Now().After(deadline) {
					return fmt.Errorf("GET http://%s/ from the host: %w", addr, err)
				}
				time.Sleep(200 * time.Millisecond)
				continue
			}
			answered++
			fmt.Fprintf(out, "GET http://%s/ -> %s\n", addr, strings.TrimSpace(body))
		}
	}
	return nil
}

// httpGet does one raw HTTP/1.0 GET / to addr: no proxies (the
// environment may name one), keep-alives or extra goroutines, so the
// connect happens on the calling thread (inside a namespace, when the
// caller entered one).
func httpGet(addr string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Close = true
	if err := req.Write(conn); err != nil {
		return "", err
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return "", err
	}
	_, rest, ok := strings.Cut(string(b), "\r\n\r\n")
	if !ok {
		return "", fmt.Errorf("malformed HTTP answer %q", b)
	}
	return rest, nil
}

// removeDemo deletes the demo's objects if they exist and waits until
// they are gone.
func removeDemo(ctx context.Context, c kubernetes.Interface) error {
	fg := metav1.DeletePropagationForeground
	zero := int64(0)
	_ = c.AppsV1().Deployments("default").Delete(ctx, "weir-demo", metav1.DeleteOptions{PropagationPolicy: &fg})
	_ = c.CoreV1().Services("default").Delete(ctx, "weir-demo", metav1.DeleteOptions{})
	_ = c.CoreV1().Pods("default").Delete(ctx, "weir-demo-client", metav1.DeleteOptions{GracePeriodSeconds: &zero})
	deadline := time.Now().Add(120 * time.Second)
	for {
		_, derr := c.AppsV1().Deployments("default").Get(ctx, "weir-demo", metav1.GetOptions{})
		_, serr := c.CoreV1().Services("default").Get(ctx, "weir-demo", metav1.GetOptions{})
		_, perr := c.CoreV1().Pods("default").Get(ctx, "weir-demo-client", metav1.GetOptions{})
		if apierrors.IsNotFound(derr) && apierrors.IsNotFound(serr) && apierrors.IsNotFound(perr) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the objects of an earlier demo are still there after 120 s")
		}
		time.Sleep(250 * time.Millisecond)
	}
}

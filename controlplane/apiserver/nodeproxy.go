package apiserver

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"weir.dev/weir/controlplane/auth"
)

// newAgentTransport is how the server reaches node agents: it verifies
// their serving certificates against the cluster CA and presents the
// kubelet-client identity the agents admit. HTTP/1.1 only, since exec
// upgrades the connection.
func newAgentTransport(ca *auth.CA) (*http.Transport, error) {
	certPEM, keyPEM, err := ca.IssueClient(auth.KubeletClientUser, nil)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("agent client certificate: %w", err)
	}
	return &http.Transport{
		// Agents are reached directly, never through the environment's proxy.
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}, nil
}

// handleNodeProxy serves pods/log and pods/exec by proxying to the agent
// of the pod's node, as kube-apiserver proxies them to the kubelet. The
// caller was authorized for the subresource already.
func (s *Server) handleNodeProxy(w http.ResponseWriter, r *http.Request, ri requestInfo) {
	ctx := r.Context()
	obj, err := s.get(ctx, ri)
	if err != nil {
		writeError(w, err)
		return
	}
	pod := obj.(*corev1.Pod)
	q := r.URL.Query()
	container, err := PodContainer(pod, q.Get("container"))
	if err != nil {
		writeError(w, err)
		return
	}
	if pod.Spec.NodeName == "" {
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name)))
		return
	}
	if ri.Subresource == "exec" && (pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed) {
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf("cannot exec into a container in a completed pod; current phase is %s", pod.Status.Phase)))
		return
	}
	if s.agents == nil {
		writeError(w, apierrors.NewServiceUnavailable(fmt.Sprintf("pods/%s: this server has no CA to reach node agents with", ri.Subresource)))
		return
	}
	nobj, err := s.get(ctx, requestInfo{Res: nodesRes, Name: pod.Spec.NodeName})
	if err != nil {
		writeError(w, err)
		return
	}
	host, err := AgentAddress(nobj.(*corev1.Node))
	if err != nil {
		writeError(w, apierrors.NewServiceUnavailable(err.Error()))
		return
	}
	target := &url.URL{Scheme: "https", Host: host}
	if ri.Subresource == "log" {
		target.Path = "/containerLogs/" + pod.Namespace + "/" + pod.Name + "/" + container
		target.RawQuery = AgentLogQuery(q).Encode()
	} else {
		target.Path = "/exec/" + pod.Namespace + "/" + pod.Name + "/" + container
		eq, err := AgentExecQuery(q)
		if err != nil {
			writeError(w, err)
			return
		}
		target.RawQuery = eq.Encode()
	}
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = target
			pr.Out.Host = target.Host
			// The caller's credentials are for the API server only.
			pr.Out.Header.Del("Authorization")
			for k := range pr.Out.Header {
				if strings.HasPrefix(k, "Impersonate-") {
					pr.Out.Header.Del(k)
				}
			}
		},
		Transport:     s.agents,
		FlushInterval: -1, // logs -f: every write reaches the client at once
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the client went away
			}
			writeError(w, apierrors.NewServiceUnavailable(fmt.Sprintf("error dialing backend: %v", err)))
		},
	}
	p.ServeHTTP(w, r)
}

// PodContainer picks the container a log or exec request names: the one
// given, which must be in the pod, else the pod's only container, else the
// kubectl.kubernetes.io/default-container annotation's (which
// kube-apiserver leaves to kubectl; honouring it here serves other
// clients the same way); otherwise the request is refused with the
// choices, init containers first, in kube-apiserver's words.
func PodContainer(pod *corev1.Pod, name string) (string, error) {
	var all []string
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			all = append(all, cs[i].Name)
		}
	}
	has := func(n string) bool {
		for _, c := range all {
			if c == n {
				return true
			}
		}
		return false
	}
	if name != "" {
		if !has(name) {
			return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
		}
		return name, nil
	}
	switch len(pod.Spec.Containers) {
	case 0:
		return "", apierrors.NewBadRequest(fmt.Sprintf("the pod %s does not have any containers", pod.Name))
	case 1:
		return pod.Spec.Containers[0].Name, nil
	}
	if d := pod.Annotations[DefaultContainerAnnotation]; d != "" && has(d) {
		return d, nil
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %v", pod.Name, all))
}

// DefaultContainerAnnotation names the container kubectl and weir pick
// when a request names none.
const DefaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// AgentAddress is host:port of a node's agent: its InternalIP (else
// ExternalIP) and the port it reports in daemonEndpoints.
func AgentAddress(n *corev1.Node) (string, error) {
	port := n.Status.DaemonEndpoints.KubeletEndpoint.Port
	if port <= 0 {
		return "", fmt.Errorf("node %s reports no agent endpoint (status.daemonEndpoints.kubeletEndpoint.port)", n.Name)
	}
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type == t && net.ParseIP(a.Address) != nil {
				return net.JoinHostPort(a.Address, strconv.Itoa(int(port))), nil
			}
		}
	}
	return "", fmt.Errorf("node %s reports no InternalIP or ExternalIP address", n.Name)
}

// AgentLogQuery carries the log options the agent reads over from a
// pods/log query.
func AgentLogQuery(q url.Values) url.Values {
	out := url.Values{}
	for _, k := range []string{"follow", "previous", "timestamps", "tailLines", "limitBytes", "sinceSeconds", "sinceTime"} {
		if v := q.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	return out
}

// AgentExecQuery translates a pods/exec query (command, stdin, stdout,
// stderr, tty) into the agent's (command, input, output, error, tty).
// stdout defaults to true, as PodExecOptions does.
func AgentExecQuery(q url.Values) (url.Values, error) {
	cmd := q["command"]
	if len(cmd) == 0 || cmd[0] == "" {
		return nil, apierrors.NewBadRequest("command: Required value: you must specify at least one command for the container")
	}
	out := url.Values{"command": cmd}
	for _, p := range []struct {
		in, out string
		def     bool
	}{{"stdin", "input", false}, {"stdout", "output", true}, {"stderr", "error", false}, {"tty", "tty", false}} {
		on := p.def
		if v := q.Get(p.in); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, apierrors.NewBadRequest(fmt.Sprintf("%s: Invalid value: %q: not a boolean", p.in, v))
			}
			on = b
		}
		if on {
			out.Set(p.out, "1")
		}
	}
	return out, nil
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// Streams are where a verb reads and writes.
type Streams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// ConfigFlags are the global flags every verb reads.
type ConfigFlags struct {
	Kubeconfig string // --kubeconfig
	Context    string // --context
	Namespace  string // -n/--namespace
}

// DefaultKubeconfig is ~/.weir/config, the last place a kubeconfig is
// looked for after --kubeconfig and $KUBECONFIG.
func DefaultKubeconfig() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".weir", "config")
}

// Client talks to one cluster. Safe for concurrent use once built.
type Client struct {
	Config  *rest.Config
	Typed   kubernetes.Interface
	Dynamic dynamic.Interface
	Mapper  meta.RESTMapper
	// Namespace is -n or the context's namespace ("default" if neither);
	// ExplicitNamespace says -n was given.
	Namespace         string
	ExplicitNamespace bool
	http              *http.Client
}

// NewClient loads the kubeconfig (--kubeconfig, then $KUBECONFIG, then
// ~/.weir/config) and builds the clients. It does no I/O beyond reading
// the kubeconfig: discovery is fetched when first needed.
func NewClient(f ConfigFlags) (*Client, error) {
	rules := &clientcmd.ClientConfigLoadingRules{}
	switch {
	case f.Kubeconfig != "":
		rules.ExplicitPath = f.Kubeconfig
	case os.Getenv(clientcmd.RecommendedConfigPathEnvVar) != "":
		rules.Precedence = filepath.SplitList(os.Getenv(clientcmd.RecommendedConfigPathEnvVar))
	default:
		rules.Precedence = []string{DefaultKubeconfig()}
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: f.Context}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, fmt.Errorf("no kubeconfig: pass --kubeconfig, set $KUBECONFIG, or run weir up to write %s", DefaultKubeconfig())
		}
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.UserAgent = "weir"
	// kubectl's own limits: the CLI makes few requests, but drain and
	// rollout poll.
	cfg.QPS, cfg.Burst = 50, 100
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("read namespace from kubeconfig: %w", err)
	}
	c := &Client{Config: cfg, Namespace: ns}
	if f.Namespace != "" {
		c.Namespace, c.ExplicitNamespace = f.Namespace, true
	}
	return c, c.build()
}

// NewClientForConfig builds a Client for cfg (tests, in-process callers).
func NewClientForConfig(cfg *rest.Config, namespace string) (*Client, error) {
	if namespace == "" {
		namespace = "default"
	}
	c := &Client{Config: rest.CopyConfig(cfg), Namespace: namespace}
	return c, c.build()
}

func (c *Client) build() error {
	var err error
	if c.Typed, err = kubernetes.NewForConfig(c.Config); err != nil {
		return fmt.Errorf("build client: %w", err)
	}
	if c.Dynamic, err = dynamic.NewForConfig(c.Config); err != nil {
		return fmt.Errorf("build dynamic client: %w", err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		return fmt.Errorf("build discovery client: %w", err)
	}
	cached := memory.NewMemCacheClient(disco)
	c.Mapper = restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(cached), cached, nil)
	if c.http, err = rest.HTTPClientFor(c.Config); err != nil {
		return fmt.Errorf("build http client: %w", err)
	}
	return nil
}

// Mapping resolves a resource argument as kubectl does: "po", "pods",
// "pod", "Pod", "deployments.apps", "deploy.v1.apps".
func (c *Client) Mapping(arg string) (*meta.RESTMapping, error) {
	gvr, gr := schema.ParseResourceArg(strings.ToLower(arg))
	var gvk schema.GroupVersionKind
	var err error
	if gvr != nil {
		gvk, err = c.Mapper.KindFor(*gvr)
	}
	if gvr == nil || err != nil {
		gvk, err = c.Mapper.KindFor(gr.WithVersion(""))
	}
	if err != nil {
		return nil, fmt.Errorf("the server doesn't have a resource type %q", arg)
	}
	return c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
}

// MappingForKind resolves a manifest's apiVersion and kind.
func (c *Client) MappingForKind(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("no matches for kind %q in version %q", gvk.Kind, gvk.GroupVersion().String())
	}
	return m, nil
}

// namespaced reports whether m's objects live in a namespace.
func namespaced(m *meta.RESTMapping) bool { return m.Scope.Name() == meta.RESTScopeNameNamespace }

// resourcePath is the REST path of m's objects in ns (all namespaces if
// ns is empty), of one object when name is set, of a subresource when sub
// is set.
func resourcePath(m *meta.RESTMapping, ns, name, sub string) string {
	gv := m.Resource.GroupVersion()
	p := "/api/" + gv.Version
	if gv.Group != "" {
		p = "/apis/" + gv.Group + "/" + gv.Version
	}
	if namespaced(m) && ns != "" {
		p += "/namespaces/" + ns
	}
	p += "/" + m.Resource.Resource
	if name != "" {
		p += "/" + name
	}
	if sub != "" {
		p += "/" + sub
	}
	return p
}

// KindString is kubectl's "kind.group" for messages: "deployment.apps",
// "pod".
func KindString(m *meta.RESTMapping) string {
	k := strings.ToLower(m.GroupVersionKind.Kind)
	if g := m.GroupVersionKind.Group; g != "" {
		k += "." + g
	}
	return k
}

// nsFor is the namespace a request for m uses.
func (c *Client) nsFor(m *meta.RESTMapping, allNamespaces bool) string {
	if !namespaced(m) || allNamespaces {
		return ""
	}
	return c.Namespace
}

func (c *Client) rawGet(ctx context.Context, path string, params map[string]string, accept string) ([]byte, error) {
	body, err := c.rawStream(ctx, path, params, accept)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	return b, nil
}

// rawStream GETs path and returns the body; an error answer becomes the
// server's Status as an error.
func (c *Client) rawStream(ctx context.Context, path string, params map[string]string, accept string) (io.ReadCloser, error) {
	u, err := url.Parse(strings.TrimSuffix(c.Config.Host, "/") + path)
	if err != nil {
		return nil, fmt.Errorf("build url: %w", err)
	}
	q := u.Query()
	for k, v := range params {
		if v != "" {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.Body, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return nil, statusError(resp.StatusCode, b)
}

// statusError is the server's Status in body, or a generic error for code.
func statusError(code int, body []byte) error {
	var st metav1.Status
	if json.Unmarshal(body, &st) == nil && st.Kind == "Status" {
		return &apierrors.StatusError{ErrStatus: st}
	}
	return apierrors.NewGenericServerResponse(code, http.MethodGet, schema.GroupResource{}, "", strings.TrimSpace(string(body)), 0, true)
}

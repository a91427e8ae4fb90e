package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// RunOptions are run's flags.
type RunOptions struct {
	Image   string
	Port    int
	Labels  string
	Env     []string
	Restart string
	Command bool // args after -- are the command, not arguments
	DryRun  DryRun
}

// Run creates a bare pod running one container, as kubectl run does.
func (c *Client) Run(ctx context.Context, s Streams, o RunOptions, name string, args []string) error {
	if o.Image == "" {
		return errors.New("--image is required")
	}
	lbls := map[string]string{"run": name}
	if o.Labels != "" {
		lbls = map[string]string{}
		for _, kv := range strings.Split(o.Labels, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("invalid label spec: %s", kv)
			}
			lbls[k] = v
		}
	}
	ctr := corev1.Container{Name: name, Image: o.Image}
	if o.Command {
		ctr.Command = args
	} else {
		ctr.Args = args
	}
	for _, e := range o.Env {
		k, v, _ := strings.Cut(e, "=")
		ctr.Env = append(ctr.Env, corev1.EnvVar{Name: k, Value: v})
	}
	if o.Port > 0 {
		ctr.Ports = []corev1.ContainerPort{{ContainerPort: int32(o.Port)}}
	}
	restart := corev1.RestartPolicyAlways
	switch o.Restart {
	case "", "Always":
	case "OnFailure", "Never":
		restart = corev1.RestartPolicy(o.Restart)
	default:
		return fmt.Errorf("invalid restart policy: %s", o.Restart)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{ctr}, RestartPolicy: restart},
	}
	if o.DryRun != DryRunClient {
		if _, err := c.Typed.CoreV1().Pods(c.Namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: o.DryRun.opts()}); err != nil {
			return err
		}
	}
	fmt.Fprintf(s.Out, "pod/%s created%s\n", name, o.DryRun.suffix())
	return nil
}

// ExposeOptions are expose's flags.
type ExposeOptions struct {
	Name       string
	Port       string
	TargetPort string
	Protocol   string
	Type       string
	Selector   string
	DryRun     DryRun
}

// Expose creates a Service selecting the pods of a deployment, replica
// set, pod or service.
func (c *Client) Expose(ctx context.Context, s Streams, o ExposeOptions, args []string) error {
	objs, err := c.selectObjects(ctx, args, "", false, false)
	if err != nil {
		return err
	}
	if len(objs) != 1 {
		return errors.New("expose needs exactly one resource")
	}
	ob := objs[0]
	selector := map[string]string{}
	var ports []int32
	switch ob.mapping.Resource.Resource {
	case "deployments", "replicasets", "statefulsets", "daemonsets":
		var sel *metav1.LabelSelector
		var tmpl corev1.PodTemplateSpec
		switch ob.mapping.Resource.Resource {
		case "deployments":
			d, err := c.Typed.AppsV1().Deployments(ob.ns).Get(ctx, ob.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			sel, tmpl = d.Spec.Selector, d.Spec.Template
		case "replicasets":
			r, err := c.Typed.AppsV1().ReplicaSets(ob.ns).Get(ctx, ob.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			sel, tmpl = r.Spec.Selector, r.Spec.Template
		case "statefulsets":
			r, err := c.Typed.AppsV1().StatefulSets(ob.ns).Get(ctx, ob.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			sel, tmpl = r.Spec.Selector, r.Spec.Template
		default:
			r, err := c.Typed.AppsV1().DaemonSets(ob.ns).Get(ctx, ob.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			sel, tmpl = r.Spec.Selector, r.Spec.Template
		}
		if sel == nil || len(sel.MatchExpressions) > 0 {
			return fmt.Errorf("couldn't convert expressions - \"%+v\" to map-based selector format", sel)
		}
		selector = sel.MatchLabels
		ports = containerPorts(tmpl.Spec.Containers)
	case "pods":
		p, err := c.Typed.CoreV1().Pods(ob.ns).Get(ctx, ob.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		selector = p.Labels
		ports = containerPorts(p.Spec.Containers)
	case "services":
		sv, err := c.Typed.CoreV1().Services(ob.ns).Get(ctx, ob.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		selector = sv.Spec.Selector
		for _, p := range sv.Spec.Ports {
			ports = append(ports, p.Port)
		}
	default:
		return fmt.Errorf("cannot expose a %s", ob.mapping.GroupVersionKind.Kind)
	}
	if o.Selector != "" {
		selector = map[string]string{}
		for _, kv := range strings.Split(o.Selector, ",") {
			k, v, _ := strings.Cut(kv, "=")
			selector[k] = v
		}
	}
	if len(selector) == 0 {
		return fmt.Errorf("couldn't retrieve selectors via --selector flag or introspection: the %s has no labels to select", ob.mapping.GroupVersionKind.Kind)
	}
	if o.Port != "" {
		ports = nil
		for _, p := range strings.Split(o.Port, ",") {
			n, err := strconv.Atoi(p)
			if err != nil {
				return fmt.Errorf("invalid --port %q", p)
			}
			ports = append(ports, int32(n))
		}
	}
	if len(ports) == 0 {
		return errors.New("couldn't find port via --port flag or introspection")
	}
	name := o.Name
	if name == "" {
		name = ob.name
	}
	proto := corev1.Protocol(o.Protocol)
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ob.ns},
		Spec:       corev1.ServiceSpec{Selector: selector, Type: corev1.ServiceType(o.Type)},
	}
	for i, p := range ports {
		sp := corev1.ServicePort{Port: p, Protocol: proto, TargetPort: intstr.FromInt32(p)}
		if len(ports) > 1 {
			sp.Name = fmt.Sprintf("port-%d", i+1)
		}
		if o.TargetPort != "" {
			sp.TargetPort = intstr.Parse(o.TargetPort)
		}
		svc.Spec.Ports = append(svc.Spec.Ports, sp)
	}
	if o.DryRun != DryRunClient {
		if _, err := c.Typed.CoreV1().Services(ob.ns).Create(ctx, svc, metav1.CreateOptions{DryRun: o.DryRun.opts()}); err != nil {
			return err
		}
	}
	fmt.Fprintf(s.Out, "service/%s exposed%s\n", name, o.DryRun.suffix())
	return nil
}

func containerPorts(cs []corev1.Container) []int32 {
	var out []int32
	for _, c := range cs {
		for _, p := range c.Ports {
			out = append(out, p.ContainerPort)
		}
	}
	return out
}

// CreateDeployment creates a Deployment of one or more images, as
// kubectl create deployment does.
func (c *Client) CreateDeployment(ctx context.Context, s Streams, name string, images []string, replicas int32, port int32, dry DryRun) error {
	if len(images) == 0 {
		return errors.New("required flag(s) \"image\" not set")
	}
	lbls := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbls}},
		},
	}
	for _, img := range images {
		n := img
		if i := strings.LastIndex(n, "/"); i >= 0 {
			n = n[i+1:]
		}
		n, _, _ = strings.Cut(n, ":")
		n, _, _ = strings.Cut(n, "@")
		ctr := corev1.Container{Name: n, Image: img}
		if port > 0 {
			ctr.Ports = []corev1.ContainerPort{{ContainerPort: port}}
		}
		d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, ctr)
	}
	if dry != DryRunClient {
		if _, err := c.Typed.AppsV1().Deployments(c.Namespace).Create(ctx, d, metav1.CreateOptions{DryRun: dry.opts()}); err != nil {
			return err
		}
	}
	fmt.Fprintf(s.Out, "deployment.apps/%s created%s\n", name, dry.suffix())
	return nil
}

// CreateNamespace creates a Namespace.
func (c *Client) CreateNamespace(ctx context.Context, s Streams, name string, dry DryRun) error {
	if dry != DryRunClient {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if _, err := c.Typed.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{DryRun: dry.opts()}); err != nil {
			return err
		}
	}
	fmt.Fprintf(s.Out, "namespace/%s created%s\n", name, dry.suffix())
	return nil
}

// DockerRegistrySecret is the Secret kubectl create secret
// docker-registry makes: a kubernetes.io/dockerconfigjson whose one
// entry, server, holds the username, password, email and their auth.
func DockerRegistrySecret(name, server, username, password, email string) (*corev1.Secret, error) {
	if server == "" {
		server = "https://index.docker.io/v1/"
	}
	type entry struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Email    string `json:"email,omitempty"`
		Auth     string `json:"auth"`
	}
	cfg := map[string]map[string]entry{"auths": {server: {
		Username: username, Password: password, Email: email,
		Auth: base64.StdEncoding.EncodeToString([]byte(username + ":" + password)),
	}}}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: b},
	}, nil
}

// GenericSecret is the Secret kubectl create secret generic makes from
// --from-literal KEY=VALUE pairs (type Opaque unless typ says another).
func GenericSecret(name, typ string, literals []string) (*corev1.Secret, error) {
	s := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{},
	}
	if typ != "" {
		s.Type = corev1.SecretType(typ)
	}
	for _, l := range literals {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("error: invalid literal source %s, expected key=value", l)
		}
		if _, dup := s.Data[k]; dup {
			return nil, fmt.Errorf("error: cannot add key %s, another key by that name already exists in Data for Secret %q", k, name)
		}
		s.Data[k] = []byte(v)
	}
	return s, nil
}

// CreateSecret creates secret in the client's namespace.
func (c *Client) CreateSecret(ctx context.Context, s Streams, secret *corev1.Secret, dry DryRun) error {
	if dry != DryRunClient {
		if _, err := c.Typed.CoreV1().Secrets(c.Namespace).Create(ctx, secret, metav1.CreateOptions{DryRun: dry.opts()}); err != nil {
			return err
		}
	}
	fmt.Fprintf(s.Out, "secret/%s created%s\n", secret.Name, dry.suffix())
	return nil
}

package runtime

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Lookup reads the ConfigMaps and Secrets a pod refers to. A missing
// object is reported with an error that apierrors.IsNotFound recognises.
// Implementations must be safe for concurrent use.
type Lookup interface {
	ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
}

// ClientLookup reads through the API with a clientset; a node's
// credentials may read the objects its pods refer to.
type ClientLookup struct{ Client kubernetes.Interface }

// ConfigMap implements Lookup.
func (l ClientLookup) ConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	return l.Client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
}

// Secret implements Lookup.
func (l ClientLookup) Secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	return l.Client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
}

// errConfig marks an error in the pod's configuration that keeps a
// container from being created (CreateContainerConfigError); the runtime
// retries on the next sync, as the referenced object may appear.
type errConfig struct{ msg string }

func (e *errConfig) Error() string { return e.msg }

func configErrorf(format string, args ...any) error {
	return &errConfig{msg: fmt.Sprintf(format, args...)}
}

// envContext is what env values may refer to besides ConfigMaps and Secrets.
type envContext struct {
	pod      *corev1.Pod
	podIP    string
	hostIP   string
	nodeName string
	// allocatable stands in for a resource limit the container does not set.
	allocatable corev1.ResourceList
}

// EnvVar is a resolved environment variable.
type EnvVar struct{ Name, Value string }

var envNameRE = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)

// resolveEnv computes a container's environment as the kubelet does:
// envFrom sources first (in order, each one's keys sorted, prefixed),
// then env entries in order, each value expanded against what is defined
// before it. A later definition of a name replaces the earlier value in
// place.
func resolveEnv(ctx context.Context, l Lookup, ec envContext, c *corev1.Container) ([]EnvVar, error) {
	ns := ec.pod.Namespace
	var out []EnvVar
	index := map[string]int{}
	set := func(name, value string) {
		if i, ok := index[name]; ok {
			out[i].Value = value
			return
		}
		index[name] = len(out)
		out = append(out, EnvVar{name, value})
	}
	lookup := func(name string) (string, bool) {
		if i, ok := index[name]; ok {
			return out[i].Value, true
		}
		return "", false
	}

	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			optional := from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional
			cm, err := getConfigMap(ctx, l, ns, from.ConfigMapRef.Name, optional)
			if err != nil {
				return nil, err
			}
			if cm != nil {
				data = cm.Data
			}
		case from.SecretRef != nil:
			optional := from.SecretRef.Optional != nil && *from.SecretRef.Optional
			s, err := getSecret(ctx, l, ns, from.SecretRef.Name, optional)
			if err != nil {
				return nil, err
			}
			if s != nil {
				data = map[string]string{}
				for k, v := range s.Data {
					data[k] = string(v)
				}
				for k, v := range s.StringData {
					data[k] = v
				}
			}
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			name := from.Prefix + k
			if !envNameRE.MatchString(name) {
				continue // the kubelet skips invalid keys (and reports an event)
			}
			set(name, data[k])
		}
	}

	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, Expand(e.Value, lookup))
			continue
		}
		v, ok, err := envValueFrom(ctx, l, ec, c, e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if ok {
			set(e.Name, v)
		}
	}
	return out, nil
}

// envValueFrom resolves a valueFrom; ok is false for an optional key that
// is missing, in which case the variable is not set.
func envValueFrom(ctx context.Context, l Lookup, ec envContext, c *corev1.Container, src *corev1.EnvVarSource) (string, bool, error) {
	ns := ec.pod.Namespace
	switch {
	case src.FieldRef != nil:
		v, err := fieldValue(ec, src.FieldRef.FieldPath)
		return v, err == nil, err
	case src.ResourceFieldRef != nil:
		v, err := resourceValue(ec, c, src.ResourceFieldRef)
		return v, err == nil, err
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		optional := ref.Optional != nil && *ref.Optional
		cm, err := getConfigMap(ctx, l, ns, ref.Name, optional)
		if err != nil || cm == nil {
			return "", false, err
		}
		if v, ok := cm.Data[ref.Key]; ok {
			return v, true, nil
		}
		if v, ok := cm.BinaryData[ref.Key]; ok {
			return string(v), true, nil
		}
		if optional {
			return "", false, nil
		}
		return "", false, configErrorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, ns, ref.Name)
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		optional := ref.Optional != nil && *ref.Optional
		s, err := getSecret(ctx, l, ns, ref.Name, optional)
		if err != nil || s == nil {
			return "", false, err
		}
		if v, ok := s.Data[ref.Key]; ok {
			return string(v), true, nil
		}
		if v, ok := s.StringData[ref.Key]; ok {
			return v, true, nil
		}
		if optional {
			return "", false, nil
		}
		return "", false, configErrorf("couldn't find key %s in Secret %s/%s", ref.Key, ns, ref.Name)
	}
	return "", false, configErrorf("empty valueFrom")
}

func getConfigMap(ctx context.Context, l Lookup, ns, name string, optional bool) (*corev1.ConfigMap, error) {
	if l == nil {
		return nil, configErrorf("configmap %q: no lookup configured", name)
	}
	cm, err := l.ConfigMap(ctx, ns, name)
	if apierrors.IsNotFound(err) {
		if optional {
			return nil, nil
		}
		return nil, configErrorf("configmap %q not found", name)
	}
	if err != nil {
		return nil, fmt.Errorf("read configmap %s/%s: %w", ns, name, err)
	}
	return cm, nil
}

func getSecret(ctx context.Context, l Lookup, ns, name string, optional bool) (*corev1.Secret, error) {
	if l == nil {
		return nil, configErrorf("secret %q: no lookup configured", name)
	}
	s, err := l.Secret(ctx, ns, name)
	if apierrors.IsNotFound(err) {
		if optional {
			return nil, nil
		}
		return nil, configErrorf("secret %q not found", name)
	}
	if err != nil {
		return nil, fmt.Errorf("read secret %s/%s: %w", ns, name, err)
	}
	return s, nil
}

// fieldValue resolves a downward-API field path.
func fieldValue(ec envContext, path string) (string, error) {
	p := ec.pod
	if k, ok := subscript(path, "metadata.labels"); ok {
		return p.Labels[k], nil
	}
	if k, ok := subscript(path, "metadata.annotations"); ok {
		return p.Annotations[k], nil
	}
	switch path {
	case "metadata.name":
		return p.Name, nil
	case "metadata.namespace":
		return p.Namespace, nil
	case "metadata.uid":
		return string(p.UID), nil
	case "spec.nodeName":
		if p.Spec.NodeName != "" {
			return p.Spec.NodeName, nil
		}
		return ec.nodeName, nil
	case "spec.serviceAccountName":
		return p.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return ec.podIP, nil
	case "status.hostIP", "status.hostIPs":
		return ec.hostIP, nil
	}
	return "", configErrorf("unsupported fieldRef %q", path)
}

// subscript parses `prefix['key']`.
func subscript(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"['")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "']")
}

// resourceValue resolves a resourceFieldRef as the kubelet does: a limit
// that is not set reads as the node's allocatable, a request that is not
// set as the limit's default of 0 (cpu rounds up to whole divisors).
func resourceValue(ec envContext, c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	var q resource.Quantity
	var found bool
	switch ref.Resource {
	case "limits.cpu", "limits.memory", "limits.ephemeral-storage":
		name := corev1.ResourceName(strings.TrimPrefix(ref.Resource, "limits."))
		if q, found = c.Resources.Limits[name]; !found {
			q, found = ec.allocatable[name]
		}
	case "requests.cpu", "requests.memory", "requests.ephemeral-storage":
		name := corev1.ResourceName(strings.TrimPrefix(ref.Resource, "requests."))
		if q, found = c.Resources.Requests[name]; !found {
			q, found = c.Resources.Limits[name]
		}
	default:
		return "", configErrorf("unsupported resourceFieldRef %q", ref.Resource)
	}
	if !found {
		return "0", nil
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if strings.HasSuffix(ref.Resource, ".cpu") {
		v := math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue()))
		return strconv.FormatInt(int64(v), 10), nil
	}
	v := math.Ceil(float64(q.Value()) / float64(divisor.Value()))
	return strconv.FormatInt(int64(v), 10), nil
}

func isConfigError(err error) bool {
	var ce *errConfig
	return errors.As(err, &ce)
}

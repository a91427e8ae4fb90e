package apiserver

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/controlplane/auth"
	"weir.dev/weir/controlplane/resources"
	"weir.dev/weir/controlplane/storage"
)

// graph answers the node authorizer's questions from etcd.
type graph struct{ s *Server }

var podsRes = resources.ByGVK(corev1.SchemeGroupVersion.WithKind("Pod"))

func (g graph) PodNode(ctx context.Context, namespace, name string) (string, bool, error) {
	kv, err := g.s.store.Get(ctx, podsRes.Key(namespace, name))
	if errors.Is(err, storage.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	obj, err := decodeStored(podsRes, kv.Value, kv.Rev)
	if err != nil {
		return "", false, err
	}
	return obj.(*corev1.Pod).Spec.NodeName, true, nil
}

func (g graph) ReferencedByNodePod(ctx context.Context, node, kind, namespace, name string) (bool, error) {
	kvs, _, err := g.s.store.List(ctx, podsRes.NamespacePrefix(namespace))
	if err != nil {
		return false, err
	}
	for _, kv := range kvs {
		obj, err := decodeStored(podsRes, kv.Value, kv.Rev)
		if err != nil {
			return false, err
		}
		p := obj.(*corev1.Pod)
		if p.Spec.NodeName == node && podReferences(&p.Spec, kind, name) {
			return true, nil
		}
	}
	return false, nil
}

func podReferences(spec *corev1.PodSpec, kind, name string) bool {
	isCM := kind == auth.KindConfigMap
	for _, v := range spec.Volumes {
		if isCM && v.ConfigMap != nil && v.ConfigMap.Name == name {
			return true
		}
		if !isCM && v.Secret != nil && v.Secret.SecretName == name {
			return true
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if isCM && src.ConfigMap != nil && src.ConfigMap.Name == name {
					return true
				}
				if !isCM && src.Secret != nil && src.Secret.Name == name {
					return true
				}
			}
		}
	}
	if !isCM {
		for _, s := range spec.ImagePullSecrets {
			if s.Name == name {
				return true
			}
		}
	}
	for _, c := range append(append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...), ephemeral(spec)...) {
		for _, e := range c.EnvFrom {
			if isCM && e.ConfigMapRef != nil && e.ConfigMapRef.Name == name {
				return true
			}
			if !isCM && e.SecretRef != nil && e.SecretRef.Name == name {
				return true
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if isCM && e.ValueFrom.ConfigMapKeyRef != nil && e.ValueFrom.ConfigMapKeyRef.Name == name {
				return true
			}
			if !isCM && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == name {
				return true
			}
		}
	}
	return false
}

func ephemeral(spec *corev1.PodSpec) []corev1.Container {
	out := make([]corev1.Container, len(spec.EphemeralContainers))
	for i, e := range spec.EphemeralContainers {
		out[i] = corev1.Container(e.EphemeralContainerCommon)
	}
	return out
}

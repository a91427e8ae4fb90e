package apiserver

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weir.dev/weir/controlplane/resources"
)

// SystemNamespaces always exist; EnsureNamespaces creates any that are missing.
var SystemNamespaces = []string{"default", "kube-system", "kube-public", "kube-node-lease"}

var namespacesRes = resources.ByGVK(corev1.SchemeGroupVersion.WithKind("Namespace"))

// EnsureNamespaces creates the namespaces that always exist. Safe to call
// from several servers at once.
func (s *Server) EnsureNamespaces(ctx context.Context) error {
	for _, n := range SystemNamespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}
		_, err := s.create(ctx, requestInfo{Verb: "create", Res: namespacesRes}, ns, false)
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", n, err)
		}
	}
	return nil
}

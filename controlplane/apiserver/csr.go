package apiserver

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"weir.dev/weir/controlplane/auth"
)

// beforeCreate runs kind-specific steps that need the caller: a CSR records
// who asked, and a node's client-certificate request from a bootstrapper or
// from that node is approved and signed at once, so joining is one call.
func (s *Server) beforeCreate(ctx context.Context, obj runtime.Object) error {
	csr, ok := obj.(*certificatesv1.CertificateSigningRequest)
	if !ok {
		return nil
	}
	u := userFrom(ctx)
	csr.Spec.Username = u.Name
	csr.Spec.Groups = u.Groups
	if csr.Spec.SignerName != certificatesv1.KubeAPIServerClientKubeletSignerName || s.cfg.CA == nil {
		return nil
	}
	node, ok := nodeFromCSR(csr.Spec.Request)
	if !ok {
		return apierrors.NewBadRequest("spec.request: a kubelet client CSR must name CN system:node:<name> and O system:nodes")
	}
	if own, isNode := u.NodeName(); isNode && own != node {
		return apierrors.NewForbidden(corev1.Resource("certificatesigningrequests"), csr.Name,
			fmt.Errorf("node %q may not request a certificate for node %q", own, node))
	}
	if !u.InGroup(auth.BootstrappersGroup) && !u.InGroup(auth.NodesGroup) && !u.InGroup(auth.MastersGroup) {
		return nil // left for an admin to approve
	}
	cert, err := s.cfg.CA.SignCSR(csr.Spec.Request, auth.NodeUserPrefix+node, []string{auth.NodesGroup})
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("spec.request: %v", err))
	}
	now := metav1.Now()
	csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
		Reason: "AutoApproved", Message: "auto-approved node client certificate", LastUpdateTime: now, LastTransitionTime: now,
	}}
	csr.Status.Certificate = cert
	return nil
}

// nodeFromCSR reads the node name a CSR asks for; SignCSR checks the rest.
func nodeFromCSR(req []byte) (string, bool) {
	block, _ := pem.Decode(req)
	if block == nil {
		return "", false
	}
	cr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return "", false
	}
	cn, orgs := cr.Subject.CommonName, cr.Subject.Organization
	if !strings.HasPrefix(cn, auth.NodeUserPrefix) || len(orgs) != 1 || orgs[0] != auth.NodesGroup {
		return "", false
	}
	return strings.TrimPrefix(cn, auth.NodeUserPrefix), true
}

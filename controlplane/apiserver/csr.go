package apiserver

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"weir.dev/weir/controlplane/auth"
	"weir.dev/weir/controlplane/resources"
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
	if csr.Spec.SignerName == certificatesv1.KubeletServingSignerName && s.cfg.CA != nil {
		return s.signNodeServing(ctx, u, csr)
	}
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

// signNodeServing approves a node agent's serving certificate request when
// the node asks for itself and only for the addresses its Node reports, as
// kube-controller-manager's kubelet-serving approvers do; requests from
// anyone else are left pending for an admin.
func (s *Server) signNodeServing(ctx context.Context, u auth.User, csr *certificatesv1.CertificateSigningRequest) error {
	own, isNode := u.NodeName()
	if !isNode {
		return nil
	}
	node, ok := nodeFromCSR(csr.Spec.Request)
	if !ok || node != own {
		return apierrors.NewForbidden(corev1.Resource("certificatesigningrequests"), csr.Name,
			fmt.Errorf("node %q may only request a serving certificate named system:node:%s", own, own))
	}
	obj, err := s.get(ctx, requestInfo{Res: nodesRes, Name: node})
	if err != nil {
		return err
	}
	var ips []net.IP
	names := []string{node}
	for _, a := range obj.(*corev1.Node).Status.Addresses {
		switch a.Type {
		case corev1.NodeInternalIP, corev1.NodeExternalIP:
			if ip := net.ParseIP(a.Address); ip != nil {
				ips = append(ips, ip)
			}
		case corev1.NodeHostName, corev1.NodeInternalDNS, corev1.NodeExternalDNS:
			names = append(names, a.Address)
		}
	}
	cert, err := s.cfg.CA.SignNodeServingCSR(csr.Spec.Request, node, ips, names)
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("spec.request: %v", err))
	}
	now := metav1.Now()
	csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
		Reason: "AutoApproved", Message: "auto-approved node serving certificate", LastUpdateTime: now, LastTransitionTime: now,
	}}
	csr.Status.Certificate = cert
	return nil
}

var nodesRes = resources.ByGVK(corev1.SchemeGroupVersion.WithKind("Node"))

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

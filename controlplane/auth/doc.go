// Package auth is weir's cluster identity: the certificate authority and
// the certificates it issues, the admin and bootstrap tokens, kubeconfig
// files, and the two questions the API server asks of every request: who is
// this (Authenticator) and may they do this (Authorize).
//
// It owns the files it is pointed at (ca.crt, ca.key, token files,
// kubeconfigs) and writes each of them atomically, secrets with mode 0600.
// Identities follow Kubernetes: "system:masters" is the admin, a node is
// "system:node:<name>" in "system:nodes" with a client certificate signed
// from its CSR, and a joining node is "system:bootstrap:<id>" in
// "system:bootstrappers" until then. Authorize mirrors the node authorizer,
// NodeRestriction's name checks and the default RBAC roles, in miniature.
//
// It does not serve HTTP, approve CertificateSigningRequest objects, store
// anything in etcd, or look at request bodies: the API server extracts the
// Attributes (including a Node's or Lease's name from the body on create),
// decides which CSR to sign for whom, and answers 401 and 403. It has no
// RBAC objects; what a node may change inside an object it may write (labels,
// taints, status fields) is admission's job. Decisions are pure functions of
// their inputs and the Graph, which the server backs with its cache.
package auth

package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Attributes describe one API request for Authorize.
type Attributes struct {
	User        User
	Verb        string // get list watch create update patch delete deletecollection
	APIGroup    string // "" for core
	Resource    string // plural, e.g. "pods"
	Subresource string // "status", "binding", "eviction", "scale", "log", "exec", ""
	Namespace   string
	// Name is the object's name; "" for list, watch, deletecollection and
	// a create whose name is not known. For a create or update of a Node or
	// Lease the server must set it from the request body, or the request is
	// denied, because a node may only write the objects named after it.
	Name string
}

// Graph answers questions about the cluster's current state that the node
// rules need. Implementations read from the server's cache; an error makes
// Authorize deny and return the error.
type Graph interface {
	// PodNode returns the node the pod is bound to ("" if unscheduled) and
	// whether the pod exists.
	PodNode(ctx context.Context, namespace, name string) (nodeName string, found bool, err error)
	// ReferencedByNodePod reports whether a pod bound to node mounts or
	// references (env, envFrom, volumes, projected volumes,
	// imagePullSecrets) the object of kind (KindConfigMap or KindSecret)
	// namespace/name.
	ReferencedByNodePod(ctx context.Context, node, kind, namespace, name string) (bool, error)
}

// Object kinds passed to Graph.ReferencedByNodePod.
const (
	KindConfigMap = "ConfigMap"
	KindSecret    = "Secret"
)

// NodeLeaseNamespace holds one Lease per node, named after the node.
const NodeLeaseNamespace = "kube-node-lease"

// Decision is the outcome of Authorize. The zero value is Deny, so a
// forgotten assignment fails closed.
type Decision int

const (
	Deny Decision = iota
	Allow
)

func (d Decision) String() string {
	switch d {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

// Authorize decides whether a.User may do what a describes. It follows
// Kubernetes' default policy in miniature: "system:masters" may do
// anything; a node ("system:node:<name>" in "system:nodes") gets the node
// authorizer's and NodeRestriction's rights; "system:bootstrappers" may
// only request certificates; anyone else is denied. The reason explains the
// decision in words fit for a 403 body or a log line. Authorize returns an
// error, and denies, only when it needs g and g is nil or fails.
//
// What a node may write inside an object it is allowed to write (labels,
// taints, which status fields) is for admission, not for Authorize.
func Authorize(ctx context.Context, g Graph, a Attributes) (Decision, string, error) {
	u := a.User
	if u.InGroup(MastersGroup) {
		return Allow, fmt.Sprintf("user %q is in group %q", u.Name, MastersGroup), nil
	}
	var reasons []string
	if node, ok := u.NodeName(); ok {
		d, reason, err := authorizeNode(ctx, g, node, a)
		if err != nil || d == Allow {
			return d, reason, err
		}
		reasons = append(reasons, reason)
	} else if u.InGroup(NodesGroup) {
		reasons = append(reasons, fmt.Sprintf("user %q is in group %q but is not named %s<node>", u.Name, NodesGroup, NodeUserPrefix))
	}
	if u.InGroup(BootstrappersGroup) {
		d, reason := authorizeBootstrapper(a)
		if d == Allow {
			return d, reason, nil
		}
		reasons = append(reasons, reason)
	}
	if len(reasons) == 0 {
		return Deny, "no RBAC policy matched", nil
	}
	return Deny, strings.Join(reasons, "; "), nil
}

func authorizeBootstrapper(a Attributes) (Decision, string) {
	if a.APIGroup == "certificates.k8s.io" && a.Resource == "certificatesigningrequests" && a.Subresource == "" {
		switch a.Verb {
		case "create", "get", "list", "watch":
			return Allow, fmt.Sprintf("bootstrap user %q may %s certificatesigningrequests", a.User.Name, a.Verb)
		}
	}
	return Deny, fmt.Sprintf("bootstrap user %q may only create, get, list and watch certificatesigningrequests, not %s %s", a.User.Name, a.Verb, resourceString(a))
}

type groupResource struct{ group, resource string }

func authorizeNode(ctx context.Context, g Graph, node string, a Attributes) (Decision, string, error) {
	switch (groupResource{a.APIGroup, a.Resource}) {
	case groupResource{"", "pods"}:
		return authorizeNodePod(ctx, g, node, a)
	case groupResource{"", "nodes"}:
		d, reason := authorizeNodeNode(node, a)
		return d, reason, nil
	case groupResource{"coordination.k8s.io", "leases"}:
		d, reason := authorizeNodeLease(node, a)
		return d, reason, nil
	case groupResource{"", "configmaps"}:
		return authorizeNodeReferenced(ctx, g, node, KindConfigMap, a)
	case groupResource{"", "secrets"}:
		return authorizeNodeReferenced(ctx, g, node, KindSecret, a)
	case groupResource{"", "services"}, groupResource{"", "endpoints"},
		groupResource{"discovery.k8s.io", "endpointslices"}, groupResource{"", "namespaces"}:
		if a.Subresource == "" && isRead(a.Verb) {
			return Allow, fmt.Sprintf("node %q may read %s", node, resourceString(a)), nil
		}
	case groupResource{"", "events"}, groupResource{"events.k8s.io", "events"}:
		if a.Subresource == "" && (isRead(a.Verb) || isWrite(a.Verb)) {
			return Allow, fmt.Sprintf("node %q may %s events", node, a.Verb), nil
		}
	case groupResource{"certificates.k8s.io", "certificatesigningrequests"}:
		// Nodes renew their client certificates themselves.
		if a.Subresource == "" && (isRead(a.Verb) || a.Verb == "create") {
			return Allow, fmt.Sprintf("node %q may %s certificatesigningrequests", node, a.Verb), nil
		}
	}
	return Deny, fmt.Sprintf("node %q cannot %s %s", node, a.Verb, resourceString(a)), nil
}

func authorizeNodePod(ctx context.Context, g Graph, node string, a Attributes) (Decision, string, error) {
	switch {
	case (a.Subresource == "" || a.Subresource == "status") && isRead(a.Verb):
		return Allow, fmt.Sprintf("node %q may read %s", node, resourceString(a)), nil
	case a.Subresource == "" && a.Verb == "create":
		return Deny, fmt.Sprintf("node %q cannot create pods: weir has no mirror pods", node), nil
	case a.Subresource == "" && a.Verb == "delete",
		a.Subresource == "status" && (a.Verb == "update" || a.Verb == "patch"):
		// The final delete and status updates of pods bound to the node;
		// checked below.
	default:
		return Deny, fmt.Sprintf("node %q cannot %s %s", node, a.Verb, resourceString(a)), nil
	}
	obj := objectString(a.Namespace, a.Name)
	if a.Name == "" {
		return Deny, fmt.Sprintf("node %q cannot %s %s without a pod name", node, a.Verb, resourceString(a)), nil
	}
	if g == nil {
		return Deny, "", errors.New("authorize pod access: no graph")
	}
	bound, found, err := g.PodNode(ctx, a.Namespace, a.Name)
	if err != nil {
		return Deny, "", fmt.Errorf("authorize pod access: look up pod %s: %w", obj, err)
	}
	switch {
	case !found:
		return Deny, fmt.Sprintf("node %q cannot modify pod %s: pod not found", node, obj), nil
	case bound == "":
		return Deny, fmt.Sprintf("node %q cannot modify pod %s: pod is not bound to a node", node, obj), nil
	case bound != node:
		return Deny, fmt.Sprintf("node %q cannot modify pod %s bound to node %q", node, obj, bound), nil
	}
	return Allow, fmt.Sprintf("node %q may %s %s: pod %s is bound to it", node, a.Verb, resourceString(a), obj), nil
}

func authorizeNodeNode(node string, a Attributes) (Decision, string) {
	var ownOnly bool
	switch {
	case (a.Subresource == "" || a.Subresource == "status") && isRead(a.Verb):
		return Allow, fmt.Sprintf("node %q may read %s", node, resourceString(a))
	case a.Subresource == "" && (a.Verb == "create" || a.Verb == "delete"):
		ownOnly = true
	case (a.Subresource == "" || a.Subresource == "status") && (a.Verb == "update" || a.Verb == "patch"):
		ownOnly = true
	}
	switch {
	case !ownOnly:
		return Deny, fmt.Sprintf("node %q cannot %s %s", node, a.Verb, resourceString(a))
	case a.Name == "":
		return Deny, fmt.Sprintf("node %q cannot %s %s without a node name", node, a.Verb, resourceString(a))
	case a.Name != node:
		return Deny, fmt.Sprintf("node %q cannot modify node %q", node, a.Name)
	}
	return Allow, fmt.Sprintf("node %q may %s its own %s", node, a.Verb, resourceString(a))
}

func authorizeNodeLease(node string, a Attributes) (Decision, string) {
	if a.Namespace != NodeLeaseNamespace {
		return Deny, fmt.Sprintf("node %q can only access leases in namespace %q", node, NodeLeaseNamespace)
	}
	switch {
	case a.Subresource != "":
		return Deny, fmt.Sprintf("node %q cannot %s %s", node, a.Verb, resourceString(a))
	case isRead(a.Verb):
		return Allow, fmt.Sprintf("node %q may read leases in namespace %q", node, NodeLeaseNamespace)
	case a.Verb != "create" && a.Verb != "update" && a.Verb != "patch" && a.Verb != "delete":
		return Deny, fmt.Sprintf("node %q cannot %s leases", node, a.Verb)
	case a.Name == "":
		return Deny, fmt.Sprintf("node %q cannot %s a lease without a name", node, a.Verb)
	case a.Name != node:
		return Deny, fmt.Sprintf("node %q cannot modify lease %s", node, objectString(a.Namespace, a.Name))
	}
	return Allow, fmt.Sprintf("node %q may %s its own lease", node, a.Verb)
}

// authorizeNodeReferenced lets a node get a configmap or secret only while
// a pod bound to it uses the object, so a node cannot read the cluster's
// secrets wholesale; listing would reveal them all, so it is never allowed.
func authorizeNodeReferenced(ctx context.Context, g Graph, node, kind string, a Attributes) (Decision, string, error) {
	what := strings.ToLower(kind)
	obj := objectString(a.Namespace, a.Name)
	switch {
	case a.Subresource != "" || a.Verb != "get":
		return Deny, fmt.Sprintf("node %q cannot %s %s: only get of a %s referenced by a pod bound to the node is allowed", node, a.Verb, resourceString(a), what), nil
	case a.Name == "":
		return Deny, fmt.Sprintf("node %q cannot get a %s without a name", node, what), nil
	case g == nil:
		return Deny, "", fmt.Errorf("authorize %s access: no graph", what)
	}
	ok, err := g.ReferencedByNodePod(ctx, node, kind, a.Namespace, a.Name)
	if err != nil {
		return Deny, "", fmt.Errorf("authorize %s access: look up references to %s: %w", what, obj, err)
	}
	if !ok {
		return Deny, fmt.Sprintf("node %q cannot get %s %s: no pod bound to the node references it", node, what, obj), nil
	}
	return Allow, fmt.Sprintf("node %q may get %s %s: a pod bound to it references it", node, what, obj), nil
}

func isRead(verb string) bool { return verb == "get" || verb == "list" || verb == "watch" }

func isWrite(verb string) bool { return verb == "create" || verb == "update" || verb == "patch" }

// resourceString names a resource as Kubernetes' messages do:
// "pods/status", "deployments.apps", "leases.coordination.k8s.io".
func resourceString(a Attributes) string {
	s := a.Resource
	if a.APIGroup != "" {
		s += "." + a.APIGroup
	}
	if a.Subresource != "" {
		s += "/" + a.Subresource
	}
	return s
}

func objectString(namespace, name string) string {
	if namespace == "" {
		return fmt.Sprintf("%q", name)
	}
	return fmt.Sprintf("%q", namespace+"/"+name)
}

package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// fakeGraph stands in for the server's cache: Authorize is pure logic over
// what the graph answers, so a map is a faithful graph.
type fakeGraph struct {
	podNode map[string]string // "ns/name" → node ("" = unscheduled)
	refs    map[string]bool   // "node|kind|ns/name"
	err     error
}

func (g fakeGraph) PodNode(_ context.Context, namespace, name string) (string, bool, error) {
	if g.err != nil {
		return "", false, g.err
	}
	n, ok := g.podNode[namespace+"/"+name]
	return n, ok, nil
}

func (g fakeGraph) ReferencedByNodePod(_ context.Context, node, kind, namespace, name string) (bool, error) {
	if g.err != nil {
		return false, g.err
	}
	return g.refs[node+"|"+kind+"|"+namespace+"/"+name], nil
}

var testGraph = fakeGraph{
	podNode: map[string]string{
		"default/p1":      "n1",
		"default/p2":      "n2",
		"default/pending": "",
	},
	refs: map[string]bool{
		"n1|Secret|default/db-pass":  true,
		"n1|ConfigMap|default/conf":  true,
		"n2|Secret|default/n2-only":  true,
		"n2|ConfigMap|default/conf2": true,
	},
}

var (
	adminUser     = User{Name: "admin", Groups: []string{MastersGroup, AuthenticatedGroup}}
	node1         = User{Name: "system:node:n1", Groups: []string{NodesGroup, AuthenticatedGroup}}
	bootstrapUser = User{Name: "system:bootstrap:abcdef", Groups: []string{BootstrappersGroup, AuthenticatedGroup}}
	plainUser     = User{Name: "bob", Groups: []string{AuthenticatedGroup}}
	// Claims the node group without a node name, or a node name without the
	// group; neither is a node.
	fakeNodeGroup = User{Name: "bob", Groups: []string{NodesGroup, AuthenticatedGroup}}
	fakeNodeName  = User{Name: "system:node:n1", Groups: []string{AuthenticatedGroup}}
)

func TestAuthorize(t *testing.T) {
	type attrs = Attributes
	tests := []struct {
		name       string
		a          Attributes
		want       Decision
		wantReason string // a substring of the reason; "" checks only that there is one
	}{
		// system:masters
		{name: "admin creates a deployment", want: Allow,
			a: attrs{User: adminUser, Verb: "create", APIGroup: "apps", Resource: "deployments", Namespace: "default"}},
		{name: "admin deletes a node", want: Allow,
			a: attrs{User: adminUser, Verb: "delete", Resource: "nodes", Name: "n2"}},
		{name: "admin lists secrets everywhere", want: Allow,
			a: attrs{User: adminUser, Verb: "list", Resource: "secrets"}},
		{name: "admin execs into a pod", want: Allow,
			a: attrs{User: adminUser, Verb: "create", Resource: "pods", Subresource: "exec", Namespace: "default", Name: "p2"}},

		// system:bootstrappers
		{name: "bootstrapper creates a csr", want: Allow,
			a: attrs{User: bootstrapUser, Verb: "create", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests"}},
		{name: "bootstrapper gets its csr", want: Allow,
			a: attrs{User: bootstrapUser, Verb: "get", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests", Name: "node-csr-n1"}},
		{name: "bootstrapper lists csrs", want: Allow,
			a: attrs{User: bootstrapUser, Verb: "list", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests"}},
		{name: "bootstrapper watches csrs", want: Allow,
			a: attrs{User: bootstrapUser, Verb: "watch", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests"}},
		{name: "bootstrapper approves a csr", want: Deny, wantReason: "only create, get, list and watch certificatesigningrequests",
			a: attrs{User: bootstrapUser, Verb: "update", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests", Subresource: "approval", Name: "node-csr-n1"}},
		{name: "bootstrapper deletes a csr", want: Deny,
			a: attrs{User: bootstrapUser, Verb: "delete", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests", Name: "node-csr-n1"}},
		{name: "bootstrapper lists pods", want: Deny, wantReason: `bootstrap user "system:bootstrap:abcdef"`,
			a: attrs{User: bootstrapUser, Verb: "list", Resource: "pods"}},
		{name: "bootstrapper creates a node", want: Deny,
			a: attrs{User: bootstrapUser, Verb: "create", Resource: "nodes", Name: "n1"}},
		{name: "csr resource in the wrong group", want: Deny,
			a: attrs{User: bootstrapUser, Verb: "create", Resource: "certificatesigningrequests"}},

		// node reads
		{name: "node lists pods", want: Allow,
			a: attrs{User: node1, Verb: "list", Resource: "pods"}},
		{name: "node watches pods", want: Allow,
			a: attrs{User: node1, Verb: "watch", Resource: "pods", Namespace: "default"}},
		{name: "node gets another node's pod", want: Allow,
			a: attrs{User: node1, Verb: "get", Resource: "pods", Namespace: "default", Name: "p2"}},
		{name: "node gets pod status", want: Allow,
			a: attrs{User: node1, Verb: "get", Resource: "pods", Subresource: "status", Namespace: "default", Name: "p1"}},
		{name: "node lists services", want: Allow,
			a: attrs{User: node1, Verb: "list", Resource: "services"}},
		{name: "node watches endpoints", want: Allow,
			a: attrs{User: node1, Verb: "watch", Resource: "endpoints"}},
		{name: "node lists endpointslices", want: Allow,
			a: attrs{User: node1, Verb: "list", APIGroup: "discovery.k8s.io", Resource: "endpointslices"}},
		{name: "node lists nodes", want: Allow,
			a: attrs{User: node1, Verb: "list", Resource: "nodes"}},
		{name: "node gets another node", want: Allow,
			a: attrs{User: node1, Verb: "get", Resource: "nodes", Name: "n2"}},
		{name: "node gets a namespace", want: Allow,
			a: attrs{User: node1, Verb: "get", Resource: "namespaces", Name: "default"}},
		{name: "node lists events", want: Allow,
			a: attrs{User: node1, Verb: "list", Resource: "events", Namespace: "default"}},

		// node writes to things it may only read
		{name: "node creates a service", want: Deny, wantReason: `node "n1" cannot create services`,
			a: attrs{User: node1, Verb: "create", Resource: "services", Namespace: "default", Name: "s"}},
		{name: "node updates a service", want: Deny,
			a: attrs{User: node1, Verb: "update", Resource: "services", Namespace: "default", Name: "s"}},
		{name: "node writes an endpointslice", want: Deny, wantReason: "endpointslices.discovery.k8s.io",
			a: attrs{User: node1, Verb: "create", APIGroup: "discovery.k8s.io", Resource: "endpointslices", Namespace: "default"}},
		{name: "node updates service status", want: Deny,
			a: attrs{User: node1, Verb: "update", Resource: "services", Subresource: "status", Namespace: "default", Name: "s"}},
		{name: "node deletes a namespace", want: Deny,
			a: attrs{User: node1, Verb: "delete", Resource: "namespaces", Name: "default"}},
		{name: "node creates a deployment", want: Deny,
			a: attrs{User: node1, Verb: "create", APIGroup: "apps", Resource: "deployments", Namespace: "default"}},
		{name: "node lists deployments", want: Deny,
			a: attrs{User: node1, Verb: "list", APIGroup: "apps", Resource: "deployments"}},
		{name: "node creates a clusterrolebinding", want: Deny,
			a: attrs{User: node1, Verb: "create", APIGroup: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"}},

		// pods
		{name: "node updates status of its own pod", want: Allow,
			a: attrs{User: node1, Verb: "update", Resource: "pods", Subresource: "status", Namespace: "default", Name: "p1"}},
		{name: "node patches status of its own pod", want: Allow,
			a: attrs{User: node1, Verb: "patch", Resource: "pods", Subresource: "status", Namespace: "default", Name: "p1"}},
		{name: "node updates status of another node's pod", want: Deny, wantReason: `node "n1" cannot modify pod "default/p2" bound to node "n2"`,
			a: attrs{User: node1, Verb: "update", Resource: "pods", Subresource: "status", Namespace: "default", Name: "p2"}},
		{name: "node updates status of an unscheduled pod", want: Deny, wantReason: "not bound",
			a: attrs{User: node1, Verb: "update", Resource: "pods", Subresource: "status", Namespace: "default", Name: "pending"}},
		{name: "node updates status of a missing pod", want: Deny, wantReason: "not found",
			a: attrs{User: node1, Verb: "patch", Resource: "pods", Subresource: "status", Namespace: "default", Name: "ghost"}},
		{name: "same pod name in another namespace", want: Deny, wantReason: "not found",
			a: attrs{User: node1, Verb: "update", Resource: "pods", Subresource: "status", Namespace: "other", Name: "p1"}},
		{name: "node deletes its own pod", want: Allow,
			a: attrs{User: node1, Verb: "delete", Resource: "pods", Namespace: "default", Name: "p1"}},
		{name: "node deletes another node's pod", want: Deny, wantReason: `bound to node "n2"`,
			a: attrs{User: node1, Verb: "delete", Resource: "pods", Namespace: "default", Name: "p2"}},
		{name: "node deletes a pod without a name", want: Deny, wantReason: "without a pod name",
			a: attrs{User: node1, Verb: "delete", Resource: "pods", Namespace: "default"}},
		{name: "node deletes a collection of pods", want: Deny,
			a: attrs{User: node1, Verb: "deletecollection", Resource: "pods", Namespace: "default"}},
		{name: "node creates a mirror pod", want: Deny, wantReason: "mirror pods",
			a: attrs{User: node1, Verb: "create", Resource: "pods", Namespace: "default", Name: "static"}},
		{name: "node updates its own pod spec", want: Deny, wantReason: `node "n1" cannot update pods`,
			a: attrs{User: node1, Verb: "update", Resource: "pods", Namespace: "default", Name: "p1"}},
		{name: "node patches its own pod spec", want: Deny,
			a: attrs{User: node1, Verb: "patch", Resource: "pods", Namespace: "default", Name: "p1"}},
		{name: "node evicts its own pod", want: Deny, wantReason: "pods/eviction",
			a: attrs{User: node1, Verb: "create", Resource: "pods", Subresource: "eviction", Namespace: "default", Name: "p1"}},
		{name: "node binds a pod", want: Deny,
			a: attrs{User: node1, Verb: "create", Resource: "pods", Subresource: "binding", Namespace: "default", Name: "p1"}},
		{name: "node reads a pod's log", want: Deny,
			a: attrs{User: node1, Verb: "get", Resource: "pods", Subresource: "log", Namespace: "default", Name: "p1"}},
		{name: "node execs into a pod", want: Deny,
			a: attrs{User: node1, Verb: "create", Resource: "pods", Subresource: "exec", Namespace: "default", Name: "p1"}},
		{name: "node creates pod status", want: Deny,
			a: attrs{User: node1, Verb: "create", Resource: "pods", Subresource: "status", Namespace: "default", Name: "p1"}},

		// configmaps and secrets
		{name: "node gets a secret its pod references", want: Allow,
			a: attrs{User: node1, Verb: "get", Resource: "secrets", Namespace: "default", Name: "db-pass"}},
		{name: "node gets a configmap its pod references", want: Allow,
			a: attrs{User: node1, Verb: "get", Resource: "configmaps", Namespace: "default", Name: "conf"}},
		{name: "node gets an unreferenced secret", want: Deny, wantReason: `node "n1" cannot get secret "default/unused"`,
			a: attrs{User: node1, Verb: "get", Resource: "secrets", Namespace: "default", Name: "unused"}},
		{name: "node gets a secret only another node's pod references", want: Deny,
			a: attrs{User: node1, Verb: "get", Resource: "secrets", Namespace: "default", Name: "n2-only"}},
		{name: "node gets a configmap only another node's pod references", want: Deny,
			a: attrs{User: node1, Verb: "get", Resource: "configmaps", Namespace: "default", Name: "conf2"}},
		{name: "configmap reference does not open the secret of that name", want: Deny,
			a: attrs{User: node1, Verb: "get", Resource: "secrets", Namespace: "default", Name: "conf"}},
		{name: "node lists secrets", want: Deny, wantReason: "only get of a secret",
			a: attrs{User: node1, Verb: "list", Resource: "secrets", Namespace: "default"}},
		{name: "node watches secrets", want: Deny,
			a: attrs{User: node1, Verb: "watch", Resource: "secrets"}},
		{name: "node lists configmaps", want: Deny,
			a: attrs{User: node1, Verb: "list", Resource: "configmaps", Namespace: "default"}},
		{name: "node watches configmaps", want: Deny,
			a: attrs{User: node1, Verb: "watch", Resource: "configmaps"}},
		{name: "node gets a secret without a name", want: Deny,
			a: attrs{User: node1, Verb: "get", Resource: "secrets", Namespace: "default"}},
		{name: "node updates a referenced secret", want: Deny,
			a: attrs{User: node1, Verb: "update", Resource: "secrets", Namespace: "default", Name: "db-pass"}},
		{name: "node creates a secret", want: Deny,
			a: attrs{User: node1, Verb: "create", Resource: "secrets", Namespace: "default", Name: "new"}},

		// nodes
		{name: "node creates its own Node", want: Allow,
			a: attrs{User: node1, Verb: "create", Resource: "nodes", Name: "n1"}},
		{name: "node updates its own Node", want: Allow,
			a: attrs{User: node1, Verb: "update", Resource: "nodes", Name: "n1"}},
		{name: "node patches its own Node", want: Allow,
			a: attrs{User: node1, Verb: "patch", Resource: "nodes", Name: "n1"}},
		{name: "node updates its own Node status", want: Allow,
			a: attrs{User: node1, Verb: "update", Resource: "nodes", Subresource: "status", Name: "n1"}},
		{name: "node patches its own Node status", want: Allow,
			a: attrs{User: node1, Verb: "patch", Resource: "nodes", Subresource: "status", Name: "n1"}},
		{name: "node deletes its own Node", want: Allow,
			a: attrs{User: node1, Verb: "delete", Resource: "nodes", Name: "n1"}},
		{name: "node creates another Node", want: Deny, wantReason: `node "n1" cannot modify node "n2"`,
			a: attrs{User: node1, Verb: "create", Resource: "nodes", Name: "n2"}},
		{name: "node updates another Node", want: Deny, wantReason: `node "n1" cannot modify node "n2"`,
			a: attrs{User: node1, Verb: "update", Resource: "nodes", Name: "n2"}},
		{name: "node patches another Node's status", want: Deny,
			a: attrs{User: node1, Verb: "patch", Resource: "nodes", Subresource: "status", Name: "n2"}},
		{name: "node deletes another Node", want: Deny,
			a: attrs{User: node1, Verb: "delete", Resource: "nodes", Name: "n2"}},
		{name: "node creates a Node without a name", want: Deny, wantReason: "without a node name",
			a: attrs{User: node1, Verb: "create", Resource: "nodes"}},
		{name: "node deletes all Nodes", want: Deny,
			a: attrs{User: node1, Verb: "deletecollection", Resource: "nodes"}},

		// leases
		{name: "node creates its own lease", want: Allow,
			a: attrs{User: node1, Verb: "create", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "kube-node-lease", Name: "n1"}},
		{name: "node gets its own lease", want: Allow,
			a: attrs{User: node1, Verb: "get", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "kube-node-lease", Name: "n1"}},
		{name: "node updates its own lease", want: Allow,
			a: attrs{User: node1, Verb: "update", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "kube-node-lease", Name: "n1"}},
		{name: "node patches its own lease", want: Allow,
			a: attrs{User: node1, Verb: "patch", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "kube-node-lease", Name: "n1"}},
		{name: "node deletes its own lease", want: Allow,
			a: attrs{User: node1, Verb: "delete", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "kube-node-lease", Name: "n1"}},
		{name: "node lists node leases", want: Allow,
			a: attrs{User: node1, Verb: "list", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "kube-node-lease"}},
		{name: "node updates another node's lease", want: Deny, wantReason: `cannot modify lease "kube-node-lease/n2"`,
			a: attrs{User: node1, Verb: "update", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "kube-node-lease", Name: "n2"}},
		{name: "node creates another node's lease", want: Deny,
			a: attrs{User: node1, Verb: "create", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "kube-node-lease", Name: "n2"}},
		{name: "node deletes another node's lease", want: Deny,
			a: attrs{User: node1, Verb: "delete", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "kube-node-lease", Name: "n2"}},
		{name: "node creates a lease without a name", want: Deny,
			a: attrs{User: node1, Verb: "create", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "kube-node-lease"}},
		{name: "node writes a lease of its name elsewhere", want: Deny, wantReason: `only access leases in namespace "kube-node-lease"`,
			a: attrs{User: node1, Verb: "update", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "kube-system", Name: "n1"}},
		{name: "node reads a leader-election lease", want: Deny,
			a: attrs{User: node1, Verb: "get", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "kube-system", Name: "weir-scheduler"}},
		{name: "node deletes all node leases", want: Deny,
			a: attrs{User: node1, Verb: "deletecollection", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "kube-node-lease"}},

		// events
		{name: "node creates a core event", want: Allow,
			a: attrs{User: node1, Verb: "create", Resource: "events", Namespace: "default"}},
		{name: "node patches a core event", want: Allow,
			a: attrs{User: node1, Verb: "patch", Resource: "events", Namespace: "default", Name: "e"}},
		{name: "node updates a core event", want: Allow,
			a: attrs{User: node1, Verb: "update", Resource: "events", Namespace: "default", Name: "e"}},
		{name: "node creates an events.k8s.io event", want: Allow,
			a: attrs{User: node1, Verb: "create", APIGroup: "events.k8s.io", Resource: "events", Namespace: "default"}},
		{name: "node patches an events.k8s.io event", want: Allow,
			a: attrs{User: node1, Verb: "patch", APIGroup: "events.k8s.io", Resource: "events", Namespace: "default", Name: "e"}},
		{name: "node deletes an event", want: Deny,
			a: attrs{User: node1, Verb: "delete", Resource: "events", Namespace: "default", Name: "e"}},

		// certificate renewal
		{name: "node creates a csr", want: Allow,
			a: attrs{User: node1, Verb: "create", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests"}},
		{name: "node watches csrs", want: Allow,
			a: attrs{User: node1, Verb: "watch", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests"}},
		{name: "node approves a csr", want: Deny,
			a: attrs{User: node1, Verb: "update", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests", Subresource: "approval", Name: "c"}},

		// identities that are not what they claim
		{name: "node group without a node name", want: Deny, wantReason: "is not named system:node:<node>",
			a: attrs{User: fakeNodeGroup, Verb: "get", Resource: "pods", Namespace: "default", Name: "p1"}},
		{name: "node name without the node group", want: Deny, wantReason: "no RBAC policy matched",
			a: attrs{User: fakeNodeName, Verb: "update", Resource: "nodes", Name: "n1"}},
		{name: "plain user reads pods", want: Deny, wantReason: "no RBAC policy matched",
			a: attrs{User: plainUser, Verb: "get", Resource: "pods", Namespace: "default", Name: "p1"}},
		{name: "no user at all", want: Deny, wantReason: "no RBAC policy matched",
			a: attrs{Verb: "get", Resource: "pods"}},
	}
	if len(tests) == 0 {
		t.Fatal("no test cases")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, reason, err := Authorize(t.Context(), testGraph, tc.a)
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if got != tc.want {
				t.Errorf("decision = %v, want %v (reason %q)", got, tc.want, reason)
			}
			if reason == "" || !strings.Contains(reason, tc.wantReason) {
				t.Errorf("reason = %q, want one containing %q", reason, tc.wantReason)
			}
		})
	}
}

func TestAuthorizeGraphFailure(t *testing.T) {
	broken := errors.New("cache not synced")
	tests := []struct {
		name string
		g    Graph
		a    Attributes
	}{
		{"pod lookup fails", fakeGraph{err: broken},
			Attributes{User: node1, Verb: "update", Resource: "pods", Subresource: "status", Namespace: "default", Name: "p1"}},
		{"reference lookup fails", fakeGraph{err: broken},
			Attributes{User: node1, Verb: "get", Resource: "secrets", Namespace: "default", Name: "db-pass"}},
		{"no graph for a pod", nil,
			Attributes{User: node1, Verb: "delete", Resource: "pods", Namespace: "default", Name: "p1"}},
		{"no graph for a secret", nil,
			Attributes{User: node1, Verb: "get", Resource: "secrets", Namespace: "default", Name: "db-pass"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, _, err := Authorize(t.Context(), tc.g, tc.a)
			if err == nil {
				t.Error("Authorize returned no error")
			}
			if tc.g != nil && !errors.Is(err, broken) {
				t.Errorf("error %v does not wrap the graph's", err)
			}
			if d != Deny {
				t.Errorf("decision = %v on error, want deny", d)
			}
		})
	}

	// Requests that need no graph are decided without one.
	d, _, err := Authorize(t.Context(), nil, Attributes{User: node1, Verb: "list", Resource: "pods"})
	if err != nil || d != Allow {
		t.Errorf("list pods without a graph = %v, %v; want allow", d, err)
	}
}

package auth_test

import (
	"context"
	"fmt"

	"weir.dev/weir/controlplane/auth"
)

// podsOnNodes is a Graph over a fixed pod-to-node map.
type podsOnNodes map[string]string

func (g podsOnNodes) PodNode(_ context.Context, namespace, name string) (string, bool, error) {
	n, ok := g[namespace+"/"+name]
	return n, ok, nil
}

func (g podsOnNodes) ReferencedByNodePod(context.Context, string, string, string, string) (bool, error) {
	return false, nil
}

func ExampleAuthorize() {
	g := podsOnNodes{"default/web-1": "n1", "default/web-2": "n2"}
	node := auth.User{Name: "system:node:n1", Groups: []string{auth.NodesGroup, auth.AuthenticatedGroup}}
	for _, pod := range []string{"web-1", "web-2"} {
		d, reason, err := auth.Authorize(context.Background(), g, auth.Attributes{
			User: node, Verb: "patch", Resource: "pods", Subresource: "status", Namespace: "default", Name: pod,
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s: %s\n", d, reason)
	}
	// Output:
	// allow: node "n1" may patch pods/status: pod "default/web-1" is bound to it
	// deny: node "n1" cannot modify pod "default/web-2" bound to node "n2"
}

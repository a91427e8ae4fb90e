package conversion_test

import (
	"fmt"

	"weir.dev/weir/controlplane/conversion"
)

func ExampleUpgrade() {
	body := []byte(`{"apiVersion":"extensions/v1beta1","kind":"ReplicaSet","metadata":{"name":"web"},` +
		`"spec":{"template":{"metadata":{"labels":{"app":"web"}}}}}`)
	out, from, warning, err := conversion.Upgrade(body)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(from.GroupVersion(), from.Kind)
	fmt.Println(warning)
	fmt.Println(string(out))
	// Output:
	// extensions/v1beta1 ReplicaSet
	// extensions/v1beta1 ReplicaSet is deprecated in v1.8+, unavailable in v1.16+; use apps/v1 ReplicaSet
	// {"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"labels":{"app":"web"},"name":"web"},"spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}}}}}
}

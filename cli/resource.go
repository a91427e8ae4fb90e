package cli

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
)

// target is one kind named on the command line and the objects of it the
// user asked for (none: all of them).
type target struct {
	mapping *meta.RESTMapping
	names   []string
}

// allCategory is what "all" expands to, as kubectl's category does.
var allCategory = []string{"pods", "services", "daemonsets.apps", "deployments.apps", "replicasets.apps",
	"statefulsets.apps", "horizontalpodautoscalers.autoscaling", "cronjobs.batch", "jobs.batch"}

// parseTargets reads kubectl's resource arguments: "TYPE[,TYPE…] [NAME…]"
// or "TYPE/NAME [TYPE/NAME…]".
func (c *Client) parseTargets(args []string) ([]target, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("you must specify the type of resource (pods, services, deployments, ...)")
	}
	var out []target
	add := func(m *meta.RESTMapping, name string) {
		for i := range out {
			if out[i].mapping.Resource == m.Resource {
				if name != "" {
					out[i].names = append(out[i].names, name)
				}
				return
			}
		}
		t := target{mapping: m}
		if name != "" {
			t.names = []string{name}
		}
		out = append(out, t)
	}
	if strings.Contains(args[0], "/") {
		for _, a := range args {
			typ, name, ok := strings.Cut(a, "/")
			if !ok || name == "" {
				return nil, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'weir get resource/<resource_name>' instead of 'weir get resource resource/<resource_name>'")
			}
			m, err := c.Mapping(typ)
			if err != nil {
				return nil, err
			}
			add(m, name)
		}
		return out, nil
	}
	var types []string
	for _, t := range strings.Split(args[0], ",") {
		if t == "all" {
			types = append(types, allCategory...)
			continue
		}
		if t != "" {
			types = append(types, t)
		}
	}
	for _, a := range args[1:] {
		if strings.Contains(a, "/") {
			return nil, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'weir get resource/<resource_name>' instead of 'weir get resource resource/<resource_name>'")
		}
	}
	for _, typ := range types {
		m, err := c.Mapping(typ)
		if err != nil {
			if args[0] == "all" {
				continue
			}
			return nil, err
		}
		if len(args) == 1 {
			add(m, "")
		}
		for _, n := range args[1:] {
			add(m, n)
		}
	}
	return out, nil
}

package app

import "weir.dev/weir/datapath/ebpf/inspect"

func init() {
	dpViews = append(dpViews, dpView{"services", "List service frontends: type, service id, backend count, affinity", inspect.Services})
}

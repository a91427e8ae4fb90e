package app

import "weir.dev/weir/datapath/ebpf/inspect"

func init() {
	dpViews = append(dpViews, dpView{"backends", "List each frontend's backends and their slots", inspect.Backends})
}

package app

import "weir.dev/weir/datapath/ebpf/inspect"

func init() {
	dpViews = append(dpViews, dpView{"stats", "Show per-service and per-reason counters and map occupancy", inspect.Stat})
}

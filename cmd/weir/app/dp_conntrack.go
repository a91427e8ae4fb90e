package app

import "weir.dev/weir/datapath/ebpf/inspect"

func init() {
	dpViews = append(dpViews, dpView{"conntrack", "List the flows the uplink programs translate (NodePort, LB and external IPs from outside)", inspect.Conntrack})
}

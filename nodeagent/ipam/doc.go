// Package ipam hands out pod addresses from a node's podCIDR, the way the
// host-local CNI plugin does: one file per reserved address in a state
// directory, so an agent restart finds every address where it left it and
// hands the same one back to the same pod.
//
// It owns the state directory and nothing else: it does not configure
// interfaces or talk to the API. The network address, the first address
// (the node bridge's gateway) and the broadcast address are never handed out.
package ipam

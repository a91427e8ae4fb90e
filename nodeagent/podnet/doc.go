// Package podnet gives each pod its network, without a CNI binary, doing
// in-process what the CNI bridge plugin does: a network namespace bound at
// /run/netns/<prefix><pod UID>, a veth pair whose host end is a port of the
// node bridge (hairpin on, for Services that lead a pod back to itself) and
// whose pod end is eth0 with an address from the node's podCIDR, lo up, a
// default route via the bridge, and routes in the node namespace to other
// nodes' podCIDRs via their node addresses. HostsFile and ResolvConf
// render the pod's /etc/hosts and /etc/resolv.conf.
//
// Everything on the node side happens in the node's network namespace
// (Config.NodeNetNS) through netlink handles opened there, and namespaces
// are created on throw-away locked threads, so the calling process's own
// namespace is never touched.
//
// It owns the bridge, the pod namespaces and veths it creates and the
// routes it tags with RouteProtocol; addresses come from package ipam. It
// does not start containers or program Services.
package podnet

package agent

import (
	"net/netip"
	"testing"

	"weir.dev/weir/datapath/iptables"
)

// TestIPTablesClusterCIDR: the agent's --cluster-cidr reaches the
// iptables rules' masquerade detector; none masquerades everything.
func TestIPTablesClusterCIDR(t *testing.T) {
	for _, want := range []netip.Prefix{netip.MustParsePrefix("10.50.0.0/16"), {}} {
		dp, err := NewDataplane(Config{Dataplane: "iptables", IPTablesBackend: iptables.BackendNFT, ClusterCIDR: want})
		if err != nil {
			t.Fatal(err)
		}
		if got := dp.(*iptables.Dataplane).Options().ClusterCIDR; got != want {
			t.Errorf("cluster CIDR %v, want %v", got, want)
		}
	}
}

package inspect

import (
	"io"
	"strconv"

	"weir.dev/weir/datapath/ebpf"
)

// ServiceRow is one frontend as `weir dp services -o json` shows it.
type ServiceRow struct {
	Frontend  string `json:"frontend"`
	Address   string `json:"address"`
	Port      uint16 `json:"port"`
	Protocol  string `json:"protocol"`
	Type      string `json:"type"`
	ServiceID uint32 `json:"serviceID"`
	// Backends is the live backend count; -1 when the service entry the
	// frontend names is missing (the data path refuses it).
	Backends int `json:"backends"`
	// AffinityTimeoutSeconds is set for sessionAffinity ClientIP.
	AffinityTimeoutSeconds uint32 `json:"affinityTimeoutSeconds,omitempty"`
}

// Services lists every frontend: its type, service id, how many backends
// it balances over and its session affinity.
func Services(w io.Writer, lb *ebpf.PinnedLB, o Options) error {
	doc := []ServiceRow{}
	var rows [][]string
	for _, f := range lb.Frontends {
		r := ServiceRow{Frontend: f.String(), Address: f.Addr.String(), Port: f.Port, Protocol: proto(f), Type: kind(f), ServiceID: f.ServiceID, Backends: -1}
		backends, affinity := "<missing service>", "-"
		if s, ok := lb.Services[f.ServiceID]; ok {
			r.Backends = int(s.Count)
			backends = strconv.Itoa(int(s.Count))
			affinity = "None"
			if s.Affinity {
				r.AffinityTimeoutSeconds = s.AffinityTimeout
				affinity = "ClientIP " + strconv.Itoa(int(s.AffinityTimeout)) + "s"
			}
		}
		doc = append(doc, r)
		rows = append(rows, []string{r.Frontend, r.Type, strconv.Itoa(int(r.ServiceID)), backends, affinity})
	}
	return write(w, o, []string{"FRONTEND", "TYPE", "SERVICE ID", "BACKENDS", "AFFINITY"}, rows, doc)
}

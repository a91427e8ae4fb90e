package inspect

import (
	"io"
	"strconv"

	"weir.dev/weir/datapath/ebpf"
)

// BackendRow is one frontend's backend set as `weir dp backends -o json`
// shows it.
type BackendRow struct {
	Frontend  string        `json:"frontend"`
	ServiceID uint32        `json:"serviceID"`
	Backends  []BackendSlot `json:"backends"`
}

// BackendSlot is one live slot.
type BackendSlot struct {
	Slot    uint16 `json:"slot"`
	Address string `json:"address"`
}

// Backends lists, per frontend, the backends a new connection picks from
// and the slot each sits in (ClientIP affinity remembers the slot). A
// frontend without backends shows one row: connections to it are refused.
func Backends(w io.Writer, lb *ebpf.PinnedLB, o Options) error {
	live := map[uint32][]BackendSlot{}
	for _, s := range lb.Slots {
		if svc, ok := lb.Services[s.ServiceID]; ok && s.Live(svc) {
			live[s.ServiceID] = append(live[s.ServiceID], BackendSlot{Slot: s.Slot, Address: s.Backend.String()})
		}
	}
	doc := []BackendRow{}
	var rows [][]string
	for _, f := range lb.Frontends {
		r := BackendRow{Frontend: f.String(), ServiceID: f.ServiceID, Backends: live[f.ServiceID]}
		if r.Backends == nil {
			r.Backends = []BackendSlot{}
		}
		doc = append(doc, r)
		id := strconv.Itoa(int(f.ServiceID))
		if len(r.Backends) == 0 {
			rows = append(rows, []string{r.Frontend, id, "-", "<none: refused>"})
		}
		for _, b := range r.Backends {
			rows = append(rows, []string{r.Frontend, id, strconv.Itoa(int(b.Slot)), b.Address})
		}
	}
	return write(w, o, []string{"FRONTEND", "SERVICE ID", "SLOT", "BACKEND"}, rows, doc)
}

package inspect

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"weir.dev/weir/datapath/ebpf"
)

// Stats is what `weir dp stats -o json` shows.
type Stats struct {
	Services []ServiceStats    `json:"services"`
	Reasons  map[string]uint64 `json:"reasons"`
	Maps     []MapStats        `json:"maps"`
}

// ServiceStats are one service port's counters (summed over CPUs) since
// it was programmed.
type ServiceStats struct {
	ServiceID uint32   `json:"serviceID"`
	Frontends []string `json:"frontends"`
	Connects  uint64   `json:"connects"`
	Datagrams uint64   `json:"datagrams"`
	Refused   uint64   `json:"refused"`
}

// MapStats is a map's occupancy.
type MapStats struct {
	Map      string `json:"map"`
	Entries  int    `json:"entries"`
	Capacity int    `json:"capacity"`
}

// Stat prints per service port counters, the per-reason counters and
// map occupancy against capacity, as three tables.
func Stat(w io.Writer, lb *ebpf.PinnedLB, o Options) error {
	st := Stats{Services: []ServiceStats{}, Reasons: lb.Reasons}
	fes := map[uint32][]string{}
	for _, f := range lb.Frontends {
		fes[f.ServiceID] = append(fes[f.ServiceID], f.String())
	}
	for _, s := range lb.Services {
		st.Services = append(st.Services, ServiceStats{ServiceID: s.ID, Frontends: fes[s.ID], Connects: s.Connects, Datagrams: s.Datagrams, Refused: s.Refused})
	}
	slices.SortFunc(st.Services, func(a, b ServiceStats) int { return int(a.ServiceID) - int(b.ServiceID) })
	for _, m := range lb.Maps {
		st.Maps = append(st.Maps, MapStats{m.Map, m.Entries, m.Capacity})
	}
	if o.Output == "json" {
		return write(w, o, nil, nil, st)
	}
	var rows [][]string
	for _, s := range st.Services {
		rows = append(rows, []string{strconv.Itoa(int(s.ServiceID)), strings.Join(s.Frontends, ","),
			strconv.FormatUint(s.Connects, 10), strconv.FormatUint(s.Datagrams, 10), strconv.FormatUint(s.Refused, 10)})
	}
	if err := write(w, o, []string{"SERVICE ID", "FRONTENDS", "CONNECTS", "DATAGRAMS", "REFUSED"}, rows, nil); err != nil {
		return err
	}
	reasons := make([]string, 0, len(st.Reasons))
	for r := range st.Reasons {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	rows = rows[:0]
	for _, r := range reasons {
		rows = append(rows, []string{r, strconv.FormatUint(st.Reasons[r], 10)})
	}
	fmt.Fprintln(w)
	if err := write(w, o, []string{"REASON", "COUNT"}, rows, nil); err != nil {
		return err
	}
	rows = rows[:0]
	for _, m := range st.Maps {
		rows = append(rows, []string{m.Map, strconv.Itoa(m.Entries), strconv.Itoa(m.Capacity),
			fmt.Sprintf("%.1f%%", 100*float64(m.Entries)/float64(max(m.Capacity, 1)))})
	}
	fmt.Fprintln(w)
	return write(w, o, []string{"MAP", "ENTRIES", "CAPACITY", "USED"}, rows, nil)
}

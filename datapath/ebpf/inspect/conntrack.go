package inspect

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"weir.dev/weir/datapath/ebpf"
)

// CTRow is one conntrack entry as `weir dp conntrack -o json` shows it.
type CTRow struct {
	Proto       string  `json:"proto"`
	Source      string  `json:"source"`
	Destination string  `json:"destination"`
	NATSource   string  `json:"natSource"`
	NATDest     string  `json:"natDestination"`
	Direction   string  `json:"direction"` // "original" or "reply"
	SNAT        bool    `json:"snat"`
	Closing     bool    `json:"closing"` // a TCP FIN or RST was seen
	ServiceID   uint32  `json:"serviceID"`
	AgeSeconds  float64 `json:"ageSeconds"`
	IdleSeconds float64 `json:"idleSeconds"` // since a packet last matched the entry
}

// Conntrack lists the flows the uplink programs (TC/XDP) translate, one
// row per direction, as `conntrack -L` would: what arrived and what it was
// rewritten to. Connections balanced by the socket LB have no entry: they
// are translated once, at connect().
func Conntrack(w io.Writer, lb *ebpf.PinnedLB, o Options) error {
	entries, err := ebpf.ReadConntrack(lb.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("node %s has no conntrack map pinned in %s: its agent runs without uplink programs (no --uplink / node IP)", lb.Node, lb.Dir)
	}
	if err != nil {
		return err
	}
	doc := []CTRow{}
	var rows [][]string
	for _, e := range entries {
		dir := "original"
		if e.Reply {
			dir = "reply"
		}
		r := CTRow{Proto: e.Proto, Source: e.Src.String(), Destination: e.Dst.String(), NATSource: e.NATSrc.String(),
			NATDest: e.NATDst.String(), Direction: dir, SNAT: e.SNAT, Closing: e.Closing, ServiceID: e.ServiceID,
			AgeSeconds: e.Age.Seconds(), IdleSeconds: e.Idle.Seconds()}
		doc = append(doc, r)
		var flags []string
		if e.SNAT {
			flags = append(flags, "snat")
		}
		if e.Closing {
			flags = append(flags, "closing")
		}
		rows = append(rows, []string{r.Proto, r.Source, r.Destination, r.NATSource, r.NATDest, dir, strings.Join(flags, ","),
			strconv.Itoa(int(r.ServiceID)), e.Age.Truncate(1e9).String(), e.Idle.Truncate(1e9).String()})
	}
	return write(w, o, []string{"PROTO", "SOURCE", "DESTINATION", "NAT SOURCE", "NAT DESTINATION", "DIRECTION", "FLAGS", "SERVICE ID", "AGE", "IDLE"}, rows, doc)
}

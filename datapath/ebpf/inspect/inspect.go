// Package inspect shows a node's pinned eBPF service maps as kubectl-like
// tables or JSON: what `weir dp` prints, like `cilium bpf lb list`. It
// reads the pins read-only through datapath/ebpf (no agent needs to run)
// and never writes a map. Each view (services, backends, stats) is one
// file with one function of the same shape, so a view is added as a file.
package inspect

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"weir.dev/weir/datapath/ebpf"
)

// Options select a node's pins and the output format.
type Options struct {
	// BPFFS is the bpffs mount; ebpf.DefaultBPFFS when empty.
	BPFFS string
	// Node names the pin directory <BPFFS>/weir/<Node>; empty means the
	// only node pinned there (an error when there are none or several).
	Node string
	// Output is "" (a table) or "json".
	Output string
}

// View prints one aspect of a node's maps in o.Output's format.
type View func(w io.Writer, lb *ebpf.PinnedLB, o Options) error

// Load finds the node o names (or the only one) and reads its maps.
func Load(o Options) (*ebpf.PinnedLB, error) {
	if o.Output != "" && o.Output != "json" {
		return nil, fmt.Errorf("--output %q: want json or nothing (a table)", o.Output)
	}
	node := o.Node
	if node == "" {
		bpffs := o.BPFFS
		if bpffs == "" {
			bpffs = ebpf.DefaultBPFFS
		}
		nodes, err := ebpf.PinnedNodes(bpffs)
		if err != nil {
			return nil, err
		}
		switch len(nodes) {
		case 0:
			return nil, fmt.Errorf("%w under %s: no node's maps are pinned there (is an agent running with --dataplane=ebpf?)",
				ebpf.ErrNoPins, filepath.Join(bpffs, "weir"))
		case 1:
			node = nodes[0]
		default:
			return nil, fmt.Errorf("--node: %d nodes have maps pinned under %s (%s); name one", len(nodes),
				filepath.Join(bpffs, "weir"), strings.Join(nodes, ", "))
		}
	}
	return ebpf.ReadPinned(o.BPFFS, node)
}

// Run loads the maps and prints view.
func Run(w io.Writer, o Options, view View) error {
	lb, err := Load(o)
	if err != nil {
		return err
	}
	return view(w, lb, o)
}

// write prints rows under header as a table, or doc as indented JSON.
func write(w io.Writer, o Options, header []string, rows [][]string, doc any) error {
	if o.Output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// kind names a frontend's flags as the service type it serves.
func kind(f ebpf.PinnedFrontend) string {
	var k []string
	if f.ClusterIP {
		k = append(k, "ClusterIP")
	}
	if f.External {
		k = append(k, "External")
	}
	if f.NodePort {
		k = append(k, "NodePort")
	}
	if f.Wildcard {
		k = append(k, "NodePort(any)")
	}
	if len(k) == 0 {
		return "-"
	}
	return strings.Join(k, ",")
}

func proto(f ebpf.PinnedFrontend) string {
	_, p, _ := strings.Cut(f.String(), "/")
	return p
}

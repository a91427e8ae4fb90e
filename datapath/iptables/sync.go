package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"time"

	"weir.dev/weir/datapath"
)

// Backend selects the iptables flavour: the machine's default `iptables`
// (nf_tables backend on Debian) or `iptables-legacy`.
type Backend string

const (
	BackendNFT    Backend = "nft"
	BackendLegacy Backend = "legacy"
)

// Config configures the iptables data plane.
type Config struct {
	Backend Backend
	Options Options
	// Exec prefixes every command, e.g. {"ip", "netns", "exec", "n1"} to
	// program another network namespace. Empty runs in the caller's.
	Exec   []string
	Logger *slog.Logger
}

// Dataplane programs kube-proxy's iptables rules. Safe for concurrent use.
type Dataplane struct {
	cfg  Config
	log  *slog.Logger
	mu   sync.Mutex
	prev *Rules // what the kernel holds after the last successful restore
	// state is the desired state ApplyServices changes.
	state *datapath.ServiceState

	// LastSync describes the last Apply, for benchmarks and metrics.
	LastSync SyncStats
}

// Options are the options the rules are rendered with.
func (d *Dataplane) Options() Options { return d.cfg.Options }

// SyncStats describes one Apply.
type SyncStats struct {
	Full     bool
	Bytes    int
	Duration time.Duration
}

var _ datapath.Dataplane = (*Dataplane)(nil)

// New validates cfg; it touches no kernel state.
func New(cfg Config) (*Dataplane, error) {
	switch cfg.Backend {
	case "":
		cfg.Backend = BackendNFT
	case BackendNFT, BackendLegacy:
	default:
		return nil, fmt.Errorf("iptables backend %q: want nft or legacy", cfg.Backend)
	}
	if cfg.Options.MasqueradeBit == 0 {
		cfg.Options = DefaultOptions()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Dataplane{cfg: cfg, log: cfg.Logger}, nil
}

func (d *Dataplane) bin(name string) string {
	if d.cfg.Backend == BackendLegacy {
		return strings.Replace(name, "iptables", "iptables-legacy", 1)
	}
	return name
}

func (d *Dataplane) run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	argv := append(append(append([]string{}, d.cfg.Exec...), d.bin(name)), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// jumps are the rules outside kube-proxy's own chains that lead into them.
var jumps = []struct{ table, chain, target, comment, extra string }{
	{"nat", "PREROUTING", chainServices, "kubernetes service portals", ""},
	{"nat", "OUTPUT", chainServices, "kubernetes service portals", ""},
	{"nat", "POSTROUTING", chainPostrouting, "kubernetes postrouting rules", ""},
	{"filter", "INPUT", chainExternalServices, "kubernetes externally-visible service portals", "-m conntrack --ctstate NEW"},
	{"filter", "FORWARD", chainExternalServices, "kubernetes externally-visible service portals", "-m conntrack --ctstate NEW"},
	{"filter", "FORWARD", chainServices, "kubernetes service portals", "-m conntrack --ctstate NEW"},
	{"filter", "OUTPUT", chainServices, "kubernetes service portals", "-m conntrack --ctstate NEW"},
	{"filter", "FORWARD", chainForward, "kubernetes forwarding rules", ""},
	{"filter", "INPUT", chainNodePorts, "kubernetes health check service ports", ""},
}

func (d *Dataplane) ensureJumps(ctx context.Context) error {
	for _, j := range jumps {
		// -N fails when the chain exists, which is fine.
		_, _ = d.run(ctx, nil, "iptables", "-w", "5", "-t", j.table, "-N", j.target)
		rule := []string{"-m", "comment", "--comment", j.comment}
		if j.extra != "" {
			rule = append(rule, strings.Fields(j.extra)...)
		}
		rule = append(rule, "-j", j.target)
		if _, err := d.run(ctx, nil, "iptables", append([]string{"-w", "5", "-t", j.table, "-C", j.chain}, rule...)...); err == nil {
			continue
		}
		if _, err := d.run(ctx, nil, "iptables", append([]string{"-w", "5", "-t", j.table, "-I", j.chain}, rule...)...); err != nil {
			return fmt.Errorf("add jump %s -> %s: %w", j.chain, j.target, err)
		}
	}
	return nil
}

// existingChains lists the per-service chains the kernel holds now.
func (d *Dataplane) existingChains(ctx context.Context) ([]string, error) {
	out, err := d.run(ctx, nil, "iptables-save", "-t", "nat")
	if err != nil {
		return nil, err
	}
	var chains []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, ":KUBE-") {
			continue
		}
		name := strings.Fields(line)[0][1:]
		for _, p := range []string{"KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-SEP-", "KUBE-FW-"} {
			if strings.HasPrefix(name, p) {
				chains = append(chains, name)
			}
		}
	}
	return chains, nil
}

// Apply renders st and restores it: a partial sync after a successful
// one, a full sync first and after any failure, as kube-proxy does.
func (d *Dataplane) Apply(ctx context.Context, st *datapath.State) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.state = datapath.NewServiceState(st)
	return d.applyLocked(ctx, st)
}

// ApplyServices changes some services of the last applied state. The
// rules are rendered whole (they depend on the whole state: rule order in
// KUBE-SERVICES, comments dropped above LargeClusterEndpoints) and then
// restored as Apply does: a partial sync writes the global chains and the
// per-service chains that changed, as kube-proxy does for a change.
func (d *Dataplane) ApplyServices(ctx context.Context, node datapath.NodeInfo, changed []datapath.Service, deleted []datapath.ServiceKey) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state == nil {
		d.state = datapath.NewServiceState(nil)
	}
	d.state.Update(node, changed, deleted)
	return d.applyLocked(ctx, d.state.State())
}

func (d *Dataplane) applyLocked(ctx context.Context, st *datapath.State) error {
	start := time.Now()
	rules := Render(st, d.cfg.Options)
	if d.prev != nil {
		input := rules.Restore(d.prev, nil)
		if _, err := d.run(ctx, input, "iptables-restore", "-w", "5", "--noflush", "--counters"); err == nil {
			d.prev = rules
			d.LastSync = SyncStats{Bytes: len(input), Duration: time.Since(start)}
			return nil
		} else {
			d.log.Warn("partial iptables sync failed; doing a full sync", slog.Any("error", err))
		}
	}
	if err := d.ensureJumps(ctx); err != nil {
		return err
	}
	existing, err := d.existingChains(ctx)
	if err != nil {
		return fmt.Errorf("read existing chains: %w", err)
	}
	input := rules.Restore(nil, existing)
	if _, err := d.run(ctx, input, "iptables-restore", "-w", "5", "--noflush", "--counters"); err != nil {
		d.prev = nil
		return fmt.Errorf("full iptables sync: %w", err)
	}
	d.prev = rules
	d.LastSync = SyncStats{Full: true, Bytes: len(input), Duration: time.Since(start)}
	return nil
}

// AttachPod and DetachPod have nothing to do: iptables rules do not follow
// interfaces.
func (d *Dataplane) AttachPod(ctx context.Context, p datapath.Pod) error { return nil }
func (d *Dataplane) DetachPod(ctx context.Context, p datapath.Pod) error { return nil }

// Close keeps the rules in place (an agent restart keeps forwarding).
func (d *Dataplane) Close() error { return nil }

// Remove deletes every rule and chain this data plane wrote, for a switch
// to the eBPF data plane.
func (d *Dataplane) Remove(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, j := range jumps {
		rule := []string{"-m", "comment", "--comment", j.comment}
		if j.extra != "" {
			rule = append(rule, strings.Fields(j.extra)...)
		}
		rule = append(rule, "-j", j.target)
		_, _ = d.run(ctx, nil, "iptables", append([]string{"-w", "5", "-t", j.table, "-D", j.chain}, rule...)...)
	}
	existing, err := d.existingChains(ctx)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString("*filter\n")
	for _, ch := range filterGlobal {
		fmt.Fprintf(&b, ":%s - [0:0]\n", ch)
	}
	for _, ch := range filterGlobal {
		fmt.Fprintf(&b, "-X %s\n", ch)
	}
	b.WriteString("COMMIT\n*nat\n")
	all := append(append([]string{}, natGlobal...), existing...)
	for _, ch := range all {
		fmt.Fprintf(&b, ":%s - [0:0]\n", ch)
	}
	for _, ch := range all {
		fmt.Fprintf(&b, "-X %s\n", ch)
	}
	b.WriteString("COMMIT\n")
	if _, err := d.run(ctx, b.Bytes(), "iptables-restore", "-w", "5", "--noflush"); err != nil {
		errs = append(errs, err)
	}
	d.prev = nil
	return errors.Join(errs...)
}

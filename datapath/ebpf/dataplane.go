package ebpf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"weir.dev/weir/datapath"
)

// Dataplane is the eBPF implementation of datapath.Dataplane for one node:
// the socket LB and, with Config.Uplink, the TC/XDP programs on the
// uplink. It is safe for concurrent use.
type Dataplane struct {
	cfg    Config
	log    *slog.Logger
	pinDir string

	mu     sync.Mutex
	objs   *socklbObjects
	links  []link.Link
	maps   *lbMaps
	lb     *lbSync
	np     *nodePort // nil without an uplink
	closed bool
	// idx is the desired state as the last Apply or ApplyServices left
	// it, indexed for ApplyServices (services.go).
	idx *serviceIndex
	// mapFull counts map-full errors by map since Open.
	mapFull map[string]uint64
}

var _ datapath.Dataplane = (*Dataplane)(nil)

// Open loads the socket LB of cfg.Node, attaches it to cfg.CgroupPath
// (and the uplink programs to cfg.Uplink, an interface of the calling
// thread's network namespace) and pins maps and links under
// cfg.PinDir(), mounting bpffs first if needed.
// When pins from an earlier run are there, it reuses the maps, swaps the
// programs inside the pinned links and rebuilds its view of what is
// programmed, so a restart disturbs no service and no connection; the
// first Apply then corrects whatever changed meanwhile.
//
// Needs Linux 5.18 (bpf_link for cgroups, getpeername hooks, netns
// cookies, bpf_set_retval), 6.6 with an uplink (tcx links), and CAP_BPF,
// CAP_NET_ADMIN, CAP_SYS_ADMIN.
func Open(ctx context.Context, cfg Config) (*Dataplane, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cgID, err := cgroupID(cfg.CgroupPath)
	if err != nil {
		return nil, fmt.Errorf("open socket LB for node %s: %w", cfg.Node, err)
	}
	if err := mountBPFFS(cfg.BPFFS); err != nil {
		return nil, err
	}
	pinDir := cfg.PinDir()
	if err := os.MkdirAll(pinDir, 0o700); err != nil {
		return nil, fmt.Errorf("open socket LB for node %s: %w", cfg.Node, err)
	}
	objs, err := loadObjects(cfg, pinDir)
	if err != nil {
		return nil, err
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		objs.Close()
		return nil, fmt.Errorf("count CPUs: %w", err)
	}
	caps := mapCaps{Frontends: cfg.Sizes.Frontends, Services: cfg.Sizes.Services, Slots: cfg.Sizes.Slots}
	m := &lbMaps{
		frontends: objs.Lb4Frontends, services: objs.Lb4Services, slots: objs.Lb4Slots,
		svcStats: objs.Lb4SvcStats, reasons: objs.Lb4Reasons, caps: caps, ncpu: ncpu,
	}
	lb := newLBSync(m, caps)
	view, err := m.read()
	if err == nil {
		err = lb.recover(view)
	}
	if err != nil {
		objs.Close()
		return nil, fmt.Errorf("reconcile pinned socket LB maps of node %s: %w", cfg.Node, err)
	}
	links, err := attachLinks(&objs.socklbPrograms, cfg.CgroupPath, cgID, filepath.Join(pinDir, "links"))
	if err != nil {
		objs.Close()
		return nil, err
	}
	np, err := openUplink(cfg, pinDir, objs)
	if err != nil {
		for _, l := range links {
			l.Close()
		}
		objs.Close()
		return nil, err
	}
	if np != nil {
		m.uplinkStats = np.tc.NpSvcStats
	}
	cfg.Logger.Info("socket lb ready", "node", cfg.Node, "cgroup", cfg.CgroupPath,
		"pin_dir", pinDir, "recovered_service_ports", len(lb.ports))
	return &Dataplane{cfg: cfg, log: cfg.Logger, pinDir: pinDir, objs: objs, links: links, maps: m, lb: lb, np: np,
		idx: newServiceIndex(), mapFull: map[string]uint64{}}, nil
}

// Apply programs the ClusterIP, externalIP, load-balancer IP and NodePort
// (node IPs, and loopback when configured) frontends of every IPv4 TCP and
// UDP service port in st, and their usable backends. It writes only what
// differs from the last Apply (or from what Open recovered): one endpoint
// changed is a few map updates whatever the number of services. A failed
// port leaves the others programmed; the errors are joined, and map-full
// errors wrap ErrMapFull.
func (d *Dataplane) Apply(ctx context.Context, st *datapath.State) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("datapath/ebpf: apply on a closed dataplane")
	}
	return d.applyLocked(ctx, datapath.NewServiceState(st))
}

// applyLocked programs the whole of ss and makes it the desired state.
func (d *Dataplane) applyLocked(ctx context.Context, ss *datapath.ServiceState) error {
	st := ss.State()
	desired, conflicts := desiredPorts(st)
	for _, c := range conflicts {
		d.log.Warn("frontend claimed twice", "frontend", c.Frontend, "kept_by", c.Kept, "ignored_for", c.Lost)
	}
	d.idx.reset(ss, desired, len(conflicts) > 0)
	err := d.lb.apply(ctx, desired)
	if d.np != nil {
		err = errors.Join(err, d.np.apply(ctx, st, d.lb))
	}
	return d.countMapFull(err)
}

// countMapFull counts the map-full errors in err and returns it.
func (d *Dataplane) countMapFull(err error) error {
	for _, mf := range mapFullErrors(err) {
		d.mapFull[mf.Map]++
	}
	return err
}

// AttachPod is a no-op for the socket LB: a pod's processes are balanced
// through the node's cgroup, not its interface. The TC programs that
// follow pod veths will use it.
func (d *Dataplane) AttachPod(ctx context.Context, p datapath.Pod) error { return nil }

// DetachPod is a no-op for the socket LB; see AttachPod.
func (d *Dataplane) DetachPod(ctx context.Context, p datapath.Pod) error { return nil }

// Close releases the process's handles. The programs stay attached and
// the maps stay pinned, so services keep working without the agent; use
// Remove to take them away. Close is idempotent.
func (d *Dataplane) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	for _, l := range d.links {
		errs = append(errs, l.Close())
	}
	if d.np != nil {
		errs = append(errs, d.np.close())
	}
	errs = append(errs, d.objs.Close())
	return errors.Join(errs...)
}

// PinDir is where the node's maps and links are pinned.
func (d *Dataplane) PinDir() string { return d.pinDir }

// Counters are the socket LB's counters, summed over CPUs.
type Counters struct {
	// Services has one row per programmed service port, by name.
	Services []ServiceCounters
	// Reasons counts refused or degraded translations by reason:
	// no_backend, service_missing, slot_missing, revnat_update,
	// affinity_update.
	Reasons map[string]uint64
	// Maps is the occupancy of the maps whose entries Apply owns.
	Maps []MapUsage
	// Uplink are the uplink programs' counters; nil without an uplink.
	Uplink *UplinkCounters
	// MapFull counts, by map, the writes Apply and ApplyServices could
	// not make for want of room since Open.
	MapFull map[string]uint64
}

// ServiceCounters are one service port's counters since it was programmed.
type ServiceCounters struct {
	// Name is namespace/name:port; empty for a port recovered at Open and
	// not yet named by an Apply.
	Name string
	// Namespace, Service and Port are Name's parts (Port is the port's
	// name, or its number when it has none).
	Namespace, Service, Port string
	// Frontend is its ClusterIP frontend, "10.96.0.10:80/tcp".
	Frontend string
	// Connects are connect() calls sent to a backend (TCP and connected
	// UDP), Datagrams unconnected UDP sends, Refused both refused for
	// want of a backend.
	Connects, Datagrams, Refused uint64
}

// MapUsage is a map's occupancy.
type MapUsage struct {
	Map               string
	Entries, Capacity int
}

// Counters reads the counters. Safe to call concurrently with Apply: it
// holds the Dataplane only to copy the list of ports, so that reading
// thousands of per-CPU entries for a scrape does not delay programming.
// A port removed meanwhile may show its last counts.
func (d *Dataplane) Counters() (Counters, error) {
	type row struct {
		id uint32
		sc ServiceCounters
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return Counters{}, errors.New("datapath/ebpf: counters of a closed dataplane")
	}
	rows := make([]row, 0, len(d.lb.ports))
	for key, p := range d.lb.ports {
		sc := ServiceCounters{Name: p.Name, Frontend: key.String()}
		sc.Namespace, sc.Service, sc.Port = splitPortName(p.Name)
		rows = append(rows, row{p.ID, sc})
	}
	c := Counters{
		Maps: []MapUsage{
			{mapFrontends, len(d.lb.feOwner), d.lb.caps.Frontends},
			{mapServices, len(d.lb.ports), d.lb.caps.Services},
			{mapSlots, d.lb.nSlots, d.lb.caps.Slots},
		},
		MapFull: maps.Clone(d.mapFull),
	}
	if d.np != nil {
		// Only ports with external frontends: few, and their ids must be
		// read while Apply cannot reuse them.
		u, err := d.np.counters(d.lb)
		if err != nil {
			d.mu.Unlock()
			return c, err
		}
		c.Uplink = &u
	}
	d.mu.Unlock()
	for _, r := range rows {
		n, err := d.maps.svcCounters(r.id)
		if err != nil {
			return c, err
		}
		r.sc.Connects, r.sc.Datagrams, r.sc.Refused = n.Connects, n.Datagrams, n.Refused
		c.Services = append(c.Services, r.sc)
	}
	slices.SortFunc(c.Services, func(a, b ServiceCounters) int {
		if r := strings.Compare(a.Name, b.Name); r != 0 {
			return r
		}
		return strings.Compare(a.Frontend, b.Frontend)
	})
	r, err := d.maps.reasonCounts()
	if err != nil {
		return c, err
	}
	c.Reasons = r
	return c, nil
}

// splitPortName splits "namespace/name:port"; Kubernetes names hold
// neither '/' nor ':'.
func splitPortName(n string) (namespace, service, port string) {
	namespace, rest, _ := strings.Cut(n, "/")
	service, port, _ = strings.Cut(rest, ":")
	return namespace, service, port
}

package ebpf

import (
	"context"
	"errors"
	"slices"
	"strings"

	"weir.dev/weir/datapath"
)

// serviceIndex is the desired state of the last Apply or ApplyServices,
// indexed so that a change of a few services finds the service ports
// and frontends it touches without walking the others.
type serviceIndex struct {
	// applied is false until the first Apply: before it the maps may hold
	// ports recovered from pins that no service names yet.
	applied bool
	state   *datapath.ServiceState
	// ports are each service's ports by their ClusterIP frontend (the
	// lbSync key); frontends every frontend each claims.
	ports     map[datapath.ServiceKey][]frontend
	frontends map[datapath.ServiceKey][]frontend
	// owner is the service each desired frontend belongs to.
	owner map[frontend]datapath.ServiceKey
	// conflicts is set when two services claim a frontend: which one keeps
	// it depends on the whole state, so every change is then applied whole.
	conflicts bool
	// wholes counts the ApplyServices that fell back to a whole apply.
	wholes uint64
}

func newServiceIndex() *serviceIndex {
	return &serviceIndex{
		state:     datapath.NewServiceState(nil),
		ports:     map[datapath.ServiceKey][]frontend{},
		frontends: map[datapath.ServiceKey][]frontend{},
		owner:     map[frontend]datapath.ServiceKey{},
	}
}

// reset indexes the whole desired state ss, programmed as desired.
func (x *serviceIndex) reset(ss *datapath.ServiceState, desired map[frontend]*svcPort, conflicts bool) {
	wholes := x.wholes
	*x = *newServiceIndex()
	x.applied, x.state, x.conflicts, x.wholes = true, ss, conflicts, wholes
	x.add(desired)
}

func (x *serviceIndex) add(desired map[frontend]*svcPort) {
	for key, sp := range desired {
		x.ports[sp.Svc] = append(x.ports[sp.Svc], key)
		for f := range sp.Frontends {
			x.frontends[sp.Svc] = append(x.frontends[sp.Svc], f)
			x.owner[f] = sp.Svc
		}
	}
}

func (x *serviceIndex) drop(k datapath.ServiceKey) {
	for _, f := range x.frontends[k] {
		if x.owner[f] == k {
			delete(x.owner, f)
		}
	}
	delete(x.ports, k)
	delete(x.frontends, k)
}

// ApplyServices programs a change of some services (see
// datapath.Dataplane): only the service ports of changed and deleted
// services are looked at and written, so one endpoint changed costs a few
// map writes and microseconds of planning whatever the number of
// services. It falls back to a whole Apply of the resulting state before
// the first Apply, when the node's addresses change (every NodePort
// frontend depends on them) and when frontends are claimed by two
// services (the winner depends on the whole state). Errors are as Apply's.
func (d *Dataplane) ApplyServices(ctx context.Context, node datapath.NodeInfo, changed []datapath.Service, deleted []datapath.ServiceKey) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("datapath/ebpf: apply on a closed dataplane")
	}
	x := d.idx
	// The last of several changes of one key wins, and a key both changed
	// and deleted is changed, as ServiceState.Update has it.
	byKey := make(map[datapath.ServiceKey]datapath.Service, len(changed))
	for _, s := range changed {
		byKey[s.ServiceKey()] = s
	}
	touched := make(map[datapath.ServiceKey]bool, len(byKey)+len(deleted))
	part := &datapath.State{NodeName: node.Name, NodeIPs: node.IPs, Services: make([]datapath.Service, 0, len(byKey))}
	for k, s := range byKey {
		touched[k] = true
		part.Services = append(part.Services, s)
	}
	slices.SortFunc(part.Services, func(a, b datapath.Service) int { return strings.Compare(a.Key(), b.Key()) })
	for _, k := range deleted {
		touched[k] = true
	}

	whole := func() error {
		x.wholes++
		x.state.Update(node, changed, deleted)
		return d.applyLocked(ctx, x.state)
	}
	if !x.applied || x.conflicts || !node.Equal(x.state.Node) {
		return whole()
	}
	desired, conflicts := desiredPorts(part)
	if len(conflicts) > 0 {
		return whole()
	}
	for _, sp := range desired {
		for f := range sp.Frontends {
			if o, ok := x.owner[f]; ok && !touched[o] {
				return whole()
			}
		}
	}
	var gone []frontend
	var stale []uint32 // ids of the touched ports before the change, for their Maglev tables
	for k := range touched {
		for _, key := range x.ports[k] {
			if desired[key] == nil {
				gone = append(gone, key)
			}
			if p := d.lb.ports[key]; p != nil {
				stale = append(stale, p.ID)
			}
		}
		x.drop(k)
	}
	x.state.Update(node, changed, deleted)
	x.add(desired)
	err := d.lb.change(ctx, desired, gone)
	if d.np != nil {
		err = errors.Join(err, d.np.change(ctx, part, stale, d.lb))
	}
	return d.countMapFull(err)
}

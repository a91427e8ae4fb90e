package endpointslice

import (
	"sync"
	"time"
)

// change is what the controller saw change about one pod (or, under the
// key "", the Service itself) since the Service's objects were last
// written.
type change struct {
	// first is when the earliest such change was seen.
	first time.Time
}

// pending holds the changes not yet written, per Service key. Safe for
// concurrent use.
type pending struct {
	mu sync.Mutex
	m  map[string]map[string]change
}

func newPending() *pending { return &pending{m: map[string]map[string]change{}} }

// note records a change to pod seen at at; earlier records win.
func (p *pending) note(service, pod string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.m[service]
	if m == nil {
		m = map[string]change{}
		p.m[service] = m
	}
	m[pod] = merge(m[pod], change{first: at})
}

// take removes and returns the Service's pending changes.
func (p *pending) take(service string) map[string]change {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.m[service]
	delete(p.m, service)
	return m
}

// restore puts back changes a failed pass did not write.
func (p *pending) restore(service string, changes map[string]change) {
	if len(changes) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.m[service]
	if m == nil {
		m = map[string]change{}
		p.m[service] = m
	}
	for k, c := range changes {
		m[k] = merge(m[k], c)
	}
}

// merge keeps the earlier change.
func merge(a, b change) change { return change{first: earlier(a.first, b.first)} }

// earlier is the earlier of two times; zero means none.
func earlier(x, y time.Time) time.Time {
	if x.IsZero() || (!y.IsZero() && y.Before(x)) {
		return y
	}
	return x
}

// earliest is the first change among changes, zero if none.
func earliest(changes map[string]change) time.Time {
	var t time.Time
	for _, c := range changes {
		t = earlier(t, c.first)
	}
	return t
}

package scheduler

import "testing"

// requested reads what the cache charges a node: cpu millicores and pods.
func requested(t *testing.T, c *cache, name string) (int64, int64) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[name]
	if n == nil {
		return 0, 0
	}
	return n.requested.milliCPU, n.pods
}

func TestCacheAssumeConfirmForget(t *testing.T) {
	c := newCache()
	c.setNode(node("n1", "1", "4Gi", 110))
	a, b := pod("a", "600m", "100Mi"), pod("b", "600m", "100Mi")

	if got, placed, fe := c.decide(a, 0); fe != nil || placed || got != "n1" {
		t.Fatalf("decide a = %q %v %v, want n1", got, placed, fe)
	}
	// The next decision counts a before any watch event confirms it.
	if _, _, fe := c.decide(b, 0); fe == nil || fe.Error() != "0/1 nodes are available: 1 Insufficient cpu." {
		t.Fatalf("decide b with a assumed: %v, want Insufficient cpu", fe)
	}
	// Deciding a again (a stale queue entry) does not charge it twice.
	if got, placed, _ := c.decide(a, 0); !placed || got != "n1" {
		t.Fatalf("decide a again = %q placed=%v, want placed on n1", got, placed)
	}
	if cpu, pods := requested(t, c, "n1"); cpu != 600 || pods != 1 {
		t.Fatalf("n1 charged %dm %d pods, want 600m 1 pod", cpu, pods)
	}

	// The informer confirms a: still charged once, and no longer
	// assumed, so a late bind failure cannot drop it.
	bound := a.DeepCopy()
	bound.Spec.NodeName = "n1"
	c.setPod(bound)
	if cpu, pods := requested(t, c, "n1"); cpu != 600 || pods != 1 {
		t.Fatalf("after confirm: n1 charged %dm %d pods, want 600m 1 pod", cpu, pods)
	}
	if c.forget(a.UID) {
		t.Fatal("forget dropped a confirmed pod")
	}

	// The pod goes away: room for b.
	if !c.removePod(a.UID) {
		t.Fatal("removePod: a was not held")
	}
	if got, _, fe := c.decide(b, 0); fe != nil || got != "n1" {
		t.Fatalf("decide b after a left = %q %v", got, fe)
	}
	// b's binding fails: forgetting it frees the node again.
	if !c.forget(b.UID) {
		t.Fatal("forget: b was not assumed")
	}
	if cpu, pods := requested(t, c, "n1"); cpu != 0 || pods != 0 {
		t.Fatalf("after forget: n1 charged %dm %d pods, want nothing", cpu, pods)
	}
}

func TestCacheMovedPod(t *testing.T) {
	c := newCache()
	c.setNode(node("n1", "4", "4Gi", 110))
	c.setNode(node("n2", "4", "4Gi", 110))
	p := pod("p", "1", "1Gi")
	got, _, _ := c.decide(p, 0)
	other := "n2"
	if got == "n2" {
		other = "n1"
	}
	// Someone else bound it elsewhere; the informer says where.
	bound := p.DeepCopy()
	bound.Spec.NodeName = other
	c.setPod(bound)
	if cpu, _ := requested(t, c, got); cpu != 0 {
		t.Fatalf("%s still charged %dm", got, cpu)
	}
	if cpu, _ := requested(t, c, other); cpu != 1000 {
		t.Fatalf("%s charged %dm, want 1000m", other, cpu)
	}
}

// TestCacheNodeLifecycle: pods bound to a node the cache has not seen
// (or that was deleted) are kept and counted once the node (re)appears;
// such a node is never a candidate.
func TestCacheNodeLifecycle(t *testing.T) {
	c := newCache()
	c.setPod(pod("early", "3", "1Gi", on("n1")))
	if _, _, fe := c.decide(pod("p", "1", "1Gi"), 0); fe == nil || fe.NumAllNodes != 0 {
		t.Fatalf("a node known only by its pods was a candidate: %v", fe)
	}
	c.setNode(node("n1", "4", "4Gi", 110))
	if _, _, fe := c.decide(pod("p2", "2", "1Gi"), 0); fe == nil || fe.Error() != "0/1 nodes are available: 1 Insufficient cpu." {
		t.Fatalf("n1 after it appeared: %v, want Insufficient cpu (3 of 4 used)", fe)
	}
	c.deleteNode("n1")
	if _, _, fe := c.decide(pod("p3", "100m", "1Mi"), 0); fe == nil || fe.NumAllNodes != 0 {
		t.Fatalf("deleted node was a candidate: %v", fe)
	}
	c.setNode(node("n1", "4", "4Gi", 110))
	if cpu, pods := requested(t, c, "n1"); cpu != 3000 || pods != 1 {
		t.Fatalf("n1 back: charged %dm %d pods, want 3000m 1", cpu, pods)
	}
}

func TestCacheServiceRecount(t *testing.T) {
	c := newCache()
	c.setNode(node("n1", "4", "4Gi", 110))
	c.setNode(node("n2", "4", "4Gi", 110))
	// Equal load; only a Service can tell the nodes apart.
	c.setPod(pod("web-1", "100m", "100Mi", on("n1"), withPodLabel("app", "web")))
	c.setPod(pod("db-1", "100m", "100Mi", on("n2"), withPodLabel("app", "db")))
	svc := service("web", map[string]string{"app": "web"})
	c.setService(svc, false)
	if got, _, _ := c.decide(pod("web-2", "100m", "100Mi", withPodLabel("app", "web")), 0); got != "n2" {
		t.Fatalf("with the Service: web-2 on %q, want n2", got)
	}
	c.setService(svc, true)
	// Without it, n1 and n2 are again equal but for web-2 on n2: the
	// next web pod goes to n1 by load alone.
	if got, _, _ := c.decide(pod("web-3", "100m", "100Mi", withPodLabel("app", "web")), 0); got != "n1" {
		t.Fatalf("after the Service left: web-3 on %q, want n1", got)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if len(n.spread) != 0 {
			t.Fatalf("node %s still counts spread groups %v", n.Name(), n.spread)
		}
	}
}

package replicaset

import (
	"testing"
	"time"
)

func TestExpectations(t *testing.T) {
	now := t0
	e := newExpectations(func() time.Time { return now })
	const key = "ns/web"
	if !e.satisfied(key) {
		t.Fatal("a ReplicaSet never seen expects something")
	}

	e.expectCreations(key, 2)
	if e.satisfied(key) {
		t.Fatal("satisfied with two creates outstanding")
	}
	e.creationObserved(key)
	if e.satisfied(key) {
		t.Fatal("satisfied with one create outstanding")
	}
	e.creationObserved(key)
	if !e.satisfied(key) {
		t.Fatal("not satisfied once every create was observed")
	}

	e.expectDeletions(key, []string{"ns/a", "ns/b"})
	e.deletionObserved(key, "ns/a")
	e.deletionObserved(key, "ns/a") // deletionTimestamp, then the delete event
	if e.satisfied(key) {
		t.Fatal("one pod's deletion seen twice satisfied two deletions")
	}
	e.deletionObserved(key, "ns/other")
	if e.satisfied(key) {
		t.Fatal("another pod's deletion counted")
	}
	e.deletionObserved(key, "ns/b")
	if !e.satisfied(key) {
		t.Fatal("not satisfied once every deletion was observed")
	}

	e.expectCreations(key, 5)
	now = now.Add(expectationsTTL + time.Second)
	if !e.satisfied(key) {
		t.Fatal("expectations never expire")
	}
	e.expectCreations(key, 1)
	e.forget(key)
	if !e.satisfied(key) {
		t.Fatal("forget kept the expectations")
	}
	e.creationObserved(key) // after forget: no record, no panic
	e.deletionObserved(key, "ns/a")
}

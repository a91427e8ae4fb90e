// Package describe renders objects as kubectl describe does: the
// important fields of a kind, related objects (a Deployment's ReplicaSets,
// a Service's endpoints, a Node's pods) and the object's Events. It is
// pure: the caller fetches what Related holds and passes the clock.
package describe

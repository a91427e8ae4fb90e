// Package topology hands out the names and ports that tests use for the
// things they create on the shared machine, so that test packages can run in
// parallel (go test -p 2) without colliding.
//
// It owns naming: every network namespace, link, cgroup, data dir and
// loopback port a test makes should come from UniqueName or FreePort rather
// than a fixed literal such as "weir-ul0", 6443 or 2379.
//
// It must not create anything itself, touch the machine's own interfaces,
// rules or cgroups, or depend on any weir package: it is a leaf that every
// test package, including those in test/, can import.
package topology

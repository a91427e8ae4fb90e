// Package etcdproc runs real etcd server processes (Debian's etcd-server,
// /usr/bin/etcd, etcd 3.4) for tests: a single member or a statically
// bootstrapped n-member cluster on loopback, with members that can be killed
// and restarted to exercise quorum loss and recovery against an external
// etcd, as `weir server --etcd-endpoints` uses one.
//
// It owns the processes it starts, their data directories under t.TempDir()
// and their log files: every process is killed in t.Cleanup, runs in its own
// process group, and receives SIGKILL if the test binary dies first.
//
// It must not skip when etcd is missing (a missing binary fails the test with
// a pointer to `make deps`), bind anything but 127.0.0.1, use fixed ports, or
// touch an etcd it did not start. It depends only on test/topology among weir
// packages; control-plane tests that want an in-process etcd use the
// embedded server instead.
package etcdproc

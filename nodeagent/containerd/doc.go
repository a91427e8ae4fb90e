// Package containerd starts and supervises weir's own containerd daemon:
// one per machine, with its own configuration (CRI plugin off), root,
// state and socket under the weir data directory, in its own session so
// that killing an agent (or the terminal that started `weir up`) never
// kills containerd and the containers it runs.
//
// Ensure is idempotent: a daemon that already answers on the socket is
// reused, and a flock on the directory keeps several agents starting at
// once from racing. The package owns <data-dir>/containerd/ and the
// daemon process; it never touches the machine's own containerd
// (/run/containerd/containerd.sock, /var/lib/containerd).
package containerd

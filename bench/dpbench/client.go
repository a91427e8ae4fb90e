package dpbench

import "weir.dev/weir/nodeagent/simnode"

// clientRun runs f on a thread inside the client namespace, as a process
// in cgroup when one is given (socket load balancing acts there).
func clientRun(ns, cgroup string, f func() error) error {
	if cgroup != "" {
		restore, err := simnode.JoinCgroup(cgroup)
		if err != nil {
			return err
		}
		defer restore()
	}
	return inNetns(ns, f)
}

// inNetns runs f on a thread inside ns; the thread is discarded after.
func inNetns(ns string, f func() error) error {
	return (&simnode.Node{Netns: ns}).Do(f)
}

// InNetns runs f on a thread inside network namespace ns (the thread is
// discarded after), for what must be opened there.
func InNetns(ns string, f func() error) error { return inNetns(ns, f) }

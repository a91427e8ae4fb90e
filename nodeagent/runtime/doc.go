// Package runtime is the node agent's pod runtime, weir's kubelet core: it
// turns a *corev1.Pod bound to this node into a network (package podnet)
// and containers in weir's containerd (one containerd namespace per node),
// reports their states as a corev1.PodStatus, restarts them as
// restartPolicy says with the kubelet's back-off, stops them gracefully
// (stop signal, grace period, SIGKILL) and tears everything down.
//
// The containers' OCI specs are built from the pod spec: command and args
// with $(VAR) expansion, env and envFrom (ConfigMap and Secret references
// resolved through a caller-supplied Lookup, fieldRef, resourceFieldRef),
// workingDir, volumes (emptyDir, hostPath, configMap, secret), the pod's
// /etc/hosts, /etc/resolv.conf and /etc/hostname, resources as cgroup
// limits under the node's cgroup parent /weir/<node> (cgroup v1
// controllers and the unified tree, as runc does with a cgroupsPath), and
// the basic securityContext fields. A container's output reaches the
// runtime through two FIFOs (stdout, stderr) that the shim writes, and the
// runtime writes it to the attempt's log file in the CRI log format
// (package crilog: a time, the stream and a full/partial tag per line), so
// logs can be served with timestamps and since filters as the kubelet
// serves them. The shim keeps the FIFOs open across agent restarts; a new
// Runtime re-attaches to the FIFOs of every task it finds running, once,
// and appends to the same file (Close stops copying without touching the
// containers).
//
// Images are pulled as imagePullPolicy says (unset: the API server's
// default, Always for :latest) through images.Puller, one pull per image
// at a time; a failed pull shows ErrImagePull, then ImagePullBackOff for
// the kubelet's back-off (per pod and image, 10 s doubling to 300 s). An
// image imported from a tarball counts as present even under Always: it
// has no registry to be re-resolved against, and this is what lets
// `image: busybox` run offline. A pull uses the pod's imagePullSecrets
// (kubernetes.io/dockerconfigjson or the legacy kubernetes.io/dockercfg),
// read through Lookup once per pull attempt: the credentials for the
// image's registry host are tried in the secrets' order until one pull
// succeeds; a secret that cannot be read is skipped with the kubelet's
// FailedToRetrieveImagePullSecret warning, and one that is malformed
// fails the pull (ErrImagePull naming the secret and key). As with the
// kubelet's default, an image once pulled is present on the node for
// every pod, whatever its secrets (IfNotPresent does not ask the registry
// again).
//
// Lifecycle hooks run here (exec and httpGet; postStart before the
// container is reported Running, preStop inside the grace period before
// the stop signal), and ExecSync runs a command in a running container for
// exec probes (package probe runs the probes; the agent wires the two).
//
// Not yet: streaming exec, shared IPC/UTS/PID namespaces between a pod's
// containers (there is no sandbox container), tty, downwardAPI/projected
// volumes.
//
// State lives where it survives an agent restart: containers and their
// exit records in containerd (labels), addresses in ipam, files (logs,
// FIFOs, volumes) under Config.StateDir/<pod UID>. A new Runtime adopts running containers; it
// never restarts them.
//
// It owns its containerd namespace, the pod directories, the pods' cgroups
// and (through podnet) their networks. It does not talk to the API server:
// the agent feeds it pods and reports the statuses it returns.
package runtime

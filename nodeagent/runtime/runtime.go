package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"weir.dev/weir/datapath"
	"weir.dev/weir/nodeagent/crilog"
	"weir.dev/weir/nodeagent/images"
	"weir.dev/weir/nodeagent/podnet"
)

// Labels on every containerd container the runtime creates. The exit
// record (exit code, reason, times) lives here too, so it outlives the
// task and the agent.
const (
	LabelPodUID       = "weir.dev/pod-uid"
	LabelPodName      = "weir.dev/pod-name"
	LabelPodNamespace = "weir.dev/pod-namespace"
	LabelContainer    = "weir.dev/container"
	LabelAttempt      = "weir.dev/attempt"
	LabelInit         = "weir.dev/init"
	LabelImage        = "weir.dev/image"
	LabelCgroup       = "weir.dev/cgroup"
	labelImageID      = "weir.dev/image-id"
	labelStreak       = "weir.dev/crash-streak"
	labelStartedAt    = "weir.dev/started-at"
	labelFinishedAt   = "weir.dev/finished-at"
	labelExitCode     = "weir.dev/exit-code"
	labelReason       = "weir.dev/reason"
	labelMessage      = "weir.dev/message"
)

// DefaultGracePeriod is the grace period of a pod that names none.
const DefaultGracePeriod = 30 * time.Second

// PodAttacher follows pod interfaces in the data plane
// (datapath.Dataplane satisfies it).
type PodAttacher interface {
	AttachPod(ctx context.Context, p datapath.Pod) error
	DetachPod(ctx context.Context, p datapath.Pod) error
}

// Config configures a Runtime.
type Config struct {
	NodeName string
	// NodeIP is reported as hostIP.
	NodeIP netip.Addr
	// Client is connected to weir's containerd.
	Client *client.Client
	// Namespace is the node's containerd namespace (default "weir-<node>").
	Namespace string
	// CgroupParent is the node's cgroup parent (default "/weir/<node>");
	// a pod's containers go to <parent>/pod<uid>/<container id>.
	CgroupParent string
	// StateDir holds a directory per pod (<data-dir>/pods).
	StateDir string
	// Network sets up pod networks; required unless every pod uses the
	// host network.
	Network *podnet.Network
	// NodeNetNS is the node's network namespace path, which hostNetwork
	// pods join. Empty means this process's namespace: the host's, or the
	// simulated node's when the agent was started inside it (runc runs in
	// the host's namespace, so the runtime names the agent's own
	// /proc/<pid>/ns/net to it then).
	NodeNetNS string
	// Lookup reads ConfigMaps and Secrets (ClientLookup over the API).
	Lookup Lookup
	// ClusterDNS and ClusterDomain shape resolv.conf (dnsPolicy
	// ClusterFirst); without ClusterDNS pods get HostResolvConf's servers.
	ClusterDNS     []string
	ClusterDomain  string
	HostResolvConf string
	// Allocatable stands in for resource limits a container does not set
	// in resourceFieldRef env values.
	Allocatable corev1.ResourceList
	// Attacher, if set, is told about every pod interface.
	Attacher PodAttacher
	// InsecureRegistries are registries (HOST or HOST:PORT) pulled from
	// over plain HTTP besides loopback ones (see images.Puller).
	InsecureRegistries []string
	// Recorder, if set, receives events (Created, Started, Killing, Failed…).
	Recorder func(pod *corev1.Pod, eventType, reason, message string)
	// Readiness, if set, reports a container's readiness probe result
	// (known is false before the first result). A running container with
	// a readiness probe is ready only when Readiness says ready; without
	// Readiness, probes are ignored and running containers are ready.
	Readiness func(uid types.UID, container string) (ready bool, known bool)
	// Startup, if set, reports a container's startup probe result. A
	// running container with a startup probe counts as started (and can
	// be ready) only when Startup says so; without Startup, running
	// containers are started.
	Startup func(uid types.UID, container string) (started bool, known bool)
	// Dial connects to httpGet lifecycle hook targets (default
	// net.Dialer); the pod IP must be reachable from where it dials.
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	Now    func() time.Time
	Logger *slog.Logger
}

// Runtime runs the pods of one node. Its methods are safe for concurrent
// use; calls for one pod are serialised, calls for different pods run in
// parallel.
type Runtime struct {
	cfg    Config
	puller *images.Puller

	mu   sync.Mutex
	pods map[types.UID]*podState
	// pullBackoff holds the image pull back-off of each pod and image
	// (key "<uid> <ref>"), as the kubelet keeps it.
	pullBackoff map[string]pullBackoff
	// pulling cancels the pull a pod's sync waits for (CancelPull).
	pulling map[types.UID]context.CancelFunc

	// copiers copy each task's output into its log file, by container
	// id (logio.go); a task has one from its creation, or from its first
	// observation by this process, until it is deleted.
	logsMu  sync.Mutex
	copiers map[string]*logCopier
}

// pullBackoff is the state of failed pulls of one image for one pod.
type pullBackoff struct {
	until time.Time     // no pull before this
	delay time.Duration // the last delay
}

// podState is what the runtime remembers about a pod between calls. All
// of it can be rebuilt after a restart.
type podState struct {
	mu          sync.Mutex
	sandbox     bool // network, files and volumes are in place
	att         *podnet.Attachment
	attached    bool
	volumes     map[string]volume
	waiting     map[string]*corev1.ContainerStateWaiting
	terminating bool
	reaped      map[string]bool // containers whose task is known deleted
	start       time.Time

	// hookCancel ends the running postStart hook, which runs under mu;
	// stopping is set once KillPod or RemovePod wait for mu.
	hookMu     sync.Mutex
	hookCancel context.CancelFunc
	stopping   bool
}

func (ps *podState) isStopping() bool {
	ps.hookMu.Lock()
	defer ps.hookMu.Unlock()
	return ps.stopping
}

// New validates cfg and returns a Runtime. It does no I/O.
func New(cfg Config) (*Runtime, error) {
	if cfg.Client == nil {
		return nil, errors.New("runtime: no containerd client")
	}
	if cfg.NodeName == "" {
		return nil, errors.New("runtime: no node name")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("runtime: no state directory")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "weir-" + cfg.NodeName
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/weir/" + cfg.NodeName
	}
	if !filepath.IsAbs(cfg.CgroupParent) {
		return nil, fmt.Errorf("runtime: cgroup parent %q is not absolute", cfg.CgroupParent)
	}
	if cfg.HostResolvConf == "" {
		cfg.HostResolvConf = "/etc/resolv.conf"
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	puller, err := images.NewPuller(cfg.Client, cfg.InsecureRegistries)
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	return &Runtime{cfg: cfg, puller: puller, pods: map[types.UID]*podState{}, pullBackoff: map[string]pullBackoff{},
		pulling: map[types.UID]context.CancelFunc{}, copiers: map[string]*logCopier{}}, nil
}

// Namespace is the containerd namespace the runtime uses.
func (r *Runtime) Namespace() string { return r.cfg.Namespace }

// GracePeriod is how long a pod's containers get between the stop signal
// and SIGKILL: the deletion's grace period, else the spec's, else 30 s.
func GracePeriod(pod *corev1.Pod) time.Duration {
	if s := pod.DeletionGracePeriodSeconds; s != nil {
		return time.Duration(*s) * time.Second
	}
	if s := pod.Spec.TerminationGracePeriodSeconds; s != nil {
		return time.Duration(*s) * time.Second
	}
	return DefaultGracePeriod
}

func (r *Runtime) state(uid types.UID) *podState {
	r.mu.Lock()
	defer r.mu.Unlock()
	ps, ok := r.pods[uid]
	if !ok {
		ps = &podState{waiting: map[string]*corev1.ContainerStateWaiting{}, reaped: map[string]bool{}}
		r.pods[uid] = ps
	}
	return ps
}

func (r *Runtime) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.cfg.Namespace)
}

// PodDir is the directory of pod uid: etc files, volumes, logs.
func (r *Runtime) PodDir(uid types.UID) string { return filepath.Join(r.cfg.StateDir, string(uid)) }

// LogPath is the log file of attempt of container name in pod uid: the
// container's stdout and stderr in the CRI log format (package crilog),
// written by the runtime.
func (r *Runtime) LogPath(uid types.UID, name string, attempt int) string {
	return filepath.Join(r.PodDir(uid), "logs", name, strconv.Itoa(attempt)+".log")
}

func (r *Runtime) podCgroup(uid types.UID) string {
	return filepath.Join(r.cfg.CgroupParent, "pod"+string(uid))
}

var uidRE = regexp.MustCompile(`^[A-Za-z0-9]+(?:[.-][A-Za-z0-9]+)*$`)

func checkPod(pod *corev1.Pod) error {
	if pod == nil || pod.UID == "" {
		return errors.New("runtime: pod without a UID")
	}
	if len(pod.UID) > 40 || !uidRE.MatchString(string(pod.UID)) {
		return fmt.Errorf("runtime: pod UID %q is not a UUID", pod.UID)
	}
	return nil
}

// Result is the outcome of a SyncPod.
type Result struct {
	Status corev1.PodStatus
	// RequeueAfter, when positive, asks the caller to sync the pod again
	// after that long: a restart back-off ends then.
	RequeueAfter time.Duration
}

// SyncPod makes pod's network and containers match its spec and returns
// its status. It starts what has not been started (init containers one
// at a time, in order, then the others), records exits, restarts exited
// containers as restartPolicy says with the kubelet's back-off (at once,
// then 10 s doubling to 300 s, reset after 10 minutes of running), and
// never starts anything once the pod is being deleted (DeletionTimestamp
// set) or KillPod ran. A problem with one container (missing image,
// missing ConfigMap key) shows in its waiting state, not as an error; an
// error means the runtime could not act (containerd, network) and the
// caller should retry.
func (r *Runtime) SyncPod(ctx context.Context, pod *corev1.Pod) (Result, error) {
	if err := checkPod(pod); err != nil {
		return Result{}, err
	}
	ctx = r.ctx(ctx)
	ps := r.state(pod.UID)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var requeue time.Duration
	if pod.DeletionTimestamp == nil && !ps.terminating {
		if err := r.ensureSandbox(ctx, pod, ps); err != nil {
			if !isConfigError(err) {
				return Result{}, err
			}
			for _, c := range allContainers(pod) {
				ps.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: err.Error()}
			}
		} else if requeue, err = r.startContainers(ctx, pod, ps); err != nil {
			return Result{}, err
		}
	}
	st, err := r.status(ctx, pod, ps)
	return Result{Status: st, RequeueAfter: requeue}, err
}

// PodStatus returns pod's status without starting anything.
func (r *Runtime) PodStatus(ctx context.Context, pod *corev1.Pod) (corev1.PodStatus, error) {
	if err := checkPod(pod); err != nil {
		return corev1.PodStatus{}, err
	}
	ctx = r.ctx(ctx)
	ps := r.state(pod.UID)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if err := r.loadMeta(pod, ps, false); err != nil {
		return corev1.PodStatus{}, err
	}
	return r.status(ctx, pod, ps)
}

type podMeta struct {
	UID       types.UID `json:"uid"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	StartTime time.Time `json:"startTime"`
}

// loadMeta reads the pod's meta file, which keeps its start time across
// restarts, or with create writes it the first time.
func (r *Runtime) loadMeta(pod *corev1.Pod, ps *podState, create bool) error {
	if !ps.start.IsZero() {
		return nil
	}
	p := filepath.Join(r.PodDir(pod.UID), "pod.json")
	if b, err := os.ReadFile(p); err == nil {
		var m podMeta
		if json.Unmarshal(b, &m) == nil && !m.StartTime.IsZero() {
			ps.start = m.StartTime
			return nil
		}
	}
	if !create {
		return nil
	}
	if err := os.MkdirAll(r.PodDir(pod.UID), 0o750); err != nil {
		return fmt.Errorf("runtime: create pod dir: %w", err)
	}
	m := podMeta{UID: pod.UID, Namespace: pod.Namespace, Name: pod.Name, StartTime: r.cfg.Now().UTC().Truncate(time.Second)}
	b, _ := json.Marshal(m)
	if err := os.WriteFile(p, b, 0o640); err != nil {
		return fmt.Errorf("runtime: write pod meta: %w", err)
	}
	ps.start = m.StartTime
	return nil
}

// ensureSandbox sets up what every container of the pod shares: its
// directory, network, /etc files and volumes.
func (r *Runtime) ensureSandbox(ctx context.Context, pod *corev1.Pod, ps *podState) error {
	if ps.sandbox {
		return nil
	}
	if err := r.loadMeta(pod, ps, true); err != nil {
		return err
	}
	dir := r.PodDir(pod.UID)
	podIP := r.cfg.NodeIP
	if !pod.Spec.HostNetwork {
		if r.cfg.Network == nil {
			return errors.New("runtime: no pod network configured")
		}
		att, err := r.cfg.Network.Setup(ctx, string(pod.UID))
		if err != nil {
			return fmt.Errorf("runtime: pod network: %w", err)
		}
		ps.att, podIP = att, att.IP
		if r.cfg.Attacher != nil && !ps.attached {
			if err := r.cfg.Attacher.AttachPod(ctx, dpPod(pod, att)); err != nil {
				return fmt.Errorf("runtime: attach pod to data plane: %w", err)
			}
			ps.attached = true
		}
	}
	etc := filepath.Join(dir, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return err
	}
	hostname := podHostname(pod)
	if pod.Spec.HostNetwork {
		hostname = r.cfg.NodeName
	}
	hostDNS := podnet.DNS{}
	if b, err := os.ReadFile(r.cfg.HostResolvConf); err == nil {
		hostDNS = podnet.ParseResolvConf(b)
	}
	dns := podnet.PodDNS(pod, r.cfg.ClusterDNS, r.cfg.ClusterDomain, hostDNS)
	for name, data := range map[string][]byte{
		"hosts":       podnet.HostsFile(podIP, hostname, podFQDN(pod, r.cfg.ClusterDomain), pod.Spec.HostAliases),
		"resolv.conf": podnet.ResolvConf(dns),
		"hostname":    []byte(hostname + "\n"),
	} {
		if err := os.WriteFile(filepath.Join(etc, name), data, 0o644); err != nil {
			return fmt.Errorf("runtime: write %s: %w", name, err)
		}
	}
	vols, err := r.prepareVolumes(ctx, pod, dir)
	if err != nil {
		return err
	}
	ps.volumes = vols
	ps.sandbox = true
	return nil
}

func dpPod(pod *corev1.Pod, att *podnet.Attachment) datapath.Pod {
	return datapath.Pod{Namespace: pod.Namespace, Name: pod.Name, HostIfIndex: att.HostIfIndex,
		HostIfName: att.HostIfName, Addr: att.IP, MAC: att.PodMAC}
}

func allContainers(pod *corev1.Pod) []*corev1.Container {
	var out []*corev1.Container
	for i := range pod.Spec.InitContainers {
		out = append(out, &pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		out = append(out, &pod.Spec.Containers[i])
	}
	return out
}

// record is one containerd container (one attempt of a pod container).
type record struct {
	ctr     client.Container
	labels  map[string]string
	name    string
	attempt int
}

// records returns the latest attempt of each container of pod uid, and
// every record.
func (r *Runtime) records(ctx context.Context, uid types.UID) (map[string]*record, []*record, error) {
	ctrs, err := r.cfg.Client.Containers(ctx, fmt.Sprintf(`labels.%q==%q`, LabelPodUID, string(uid)))
	if err != nil {
		return nil, nil, fmt.Errorf("runtime: list containers of pod %s: %w", uid, err)
	}
	latest := map[string]*record{}
	var all []*record
	for _, c := range ctrs {
		info, err := c.Info(ctx, client.WithoutRefreshedMetadata)
		if err != nil {
			return nil, nil, err
		}
		attempt, _ := strconv.Atoi(info.Labels[LabelAttempt])
		rec := &record{ctr: c, labels: info.Labels, name: info.Labels[LabelContainer], attempt: attempt}
		all = append(all, rec)
		if cur, ok := latest[rec.name]; !ok || cur.attempt < attempt {
			latest[rec.name] = rec
		}
	}
	return latest, all, nil
}

// startContainers starts the next init container that has not run, or,
// once every init container succeeded, every container that has no
// record yet.
func (r *Runtime) startContainers(ctx context.Context, pod *corev1.Pod, ps *podState) (time.Duration, error) {
	latest, all, err := r.records(ctx, pod.UID)
	if err != nil {
		return 0, err
	}
	var requeue time.Duration
	// next advances one container; done is false while it has not
	// completed successfully (what init containers wait for).
	next := func(c *corev1.Container, isInit bool) (done bool, err error) {
		if ps.isStopping() {
			return false, nil
		}
		rec := latest[c.Name]
		if rec == nil {
			wait, err := r.start(ctx, pod, ps, c, isInit, 0, 0)
			requeue = sooner(requeue, wait)
			return false, err
		}
		o, err := r.observe(ctx, pod, ps, rec)
		if err != nil {
			return false, err
		}
		switch {
		case o.waiting != nil && o.waiting.Reason == "ContainerCreating":
			return false, r.startTask(ctx, pod, ps, c, rec)
		case o.terminated == nil:
			return false, nil
		case !restarts(pod, isInit, o.terminated.ExitCode):
			return o.terminated.ExitCode == 0, nil
		}
		delay, streak := backoff(rec, o.terminated)
		if wait := o.terminated.FinishedAt.Add(delay).Sub(r.cfg.Now()); wait > 0 {
			if w := ps.waiting[c.Name]; w == nil || w.Reason != "CrashLoopBackOff" {
				r.event(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container "+c.Name)
			}
			ps.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", delay, c.Name, pod.Name, pod.Namespace, pod.UID)}
			requeue = sooner(requeue, wait)
			return false, nil
		}
		wait, err := r.start(ctx, pod, ps, c, isInit, rec.attempt+1, streak)
		if err != nil {
			return false, err
		}
		if wait > 0 {
			requeue = sooner(requeue, wait)
			return false, nil
		}
		r.prune(ctx, pod.UID, c.Name, rec.attempt, all)
		return false, nil
	}
	for i := range pod.Spec.InitContainers {
		done, err := next(&pod.Spec.InitContainers[i], true)
		if err != nil || !done {
			return requeue, err
		}
	}
	for i := range pod.Spec.Containers {
		if _, err := next(&pod.Spec.Containers[i], false); err != nil {
			return requeue, err
		}
	}
	return requeue, nil
}

// sooner is the earlier of two requeue delays, where 0 means none.
func sooner(a, b time.Duration) time.Duration {
	if a == 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// restarts reports whether a container that exited with code is started
// again: restartPolicy Always restarts main containers whatever the code,
// OnFailure on a non-zero code; a failed init container is retried unless
// the policy is Never.
func restarts(pod *corev1.Pod, isInit bool, code int32) bool {
	switch pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return code != 0
	default:
		return code != 0 || !isInit
	}
}

// Back-off between restarts, as the kubelet's: the first restart is
// immediate, then 10 s doubling up to 300 s; a container that ran for 10
// minutes starts the sequence over.
const (
	backoffInitial = 10 * time.Second
	backoffMax     = 300 * time.Second
	backoffReset   = 10 * time.Minute
)

// backoff returns the delay before restarting the exited attempt rec and
// the crash streak the next attempt carries.
func backoff(rec *record, t *corev1.ContainerStateTerminated) (time.Duration, int) {
	if t.FinishedAt.Sub(t.StartedAt.Time) >= backoffReset {
		return 0, 0
	}
	streak, _ := strconv.Atoi(rec.labels[labelStreak])
	if streak == 0 {
		return 0, 1
	}
	d := backoffInitial
	for i := 1; i < streak && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax), streak + 1
}

// prune deletes attempts of container name older than the previous one
// (the previous one stays for `logs --previous`).
func (r *Runtime) prune(ctx context.Context, uid types.UID, name string, previous int, all []*record) {
	for _, rec := range all {
		if rec.name != name || rec.attempt >= previous {
			continue
		}
		if task, err := rec.ctr.Task(ctx, nil); err == nil {
			_, _ = task.Delete(ctx, client.WithProcessKill)
		}
		r.finishLogs(rec.ctr.ID())
		if err := rec.ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			r.cfg.Logger.Warn("delete old container", slog.String("container", rec.ctr.ID()), slog.Any("error", err))
			continue
		}
		os.Remove(r.LogPath(uid, name, rec.attempt))
		os.Remove(filepath.Join(r.PodDir(uid), "termination", fmt.Sprintf("%s-%d", name, rec.attempt)))
	}
}

var (
	idNameRE   = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)
	idUnsafeRE = regexp.MustCompile(`[^a-z0-9]+`)
)

// ContainerID is the containerd id of attempt of container name in pod
// uid: "<uid>_<name>_<attempt>", the name shortened (with a hash) where it
// is long or not a valid containerd identifier part, so ids stay within
// containerd's 76 bytes.
func ContainerID(uid types.UID, name string, attempt int) string {
	n := name
	if len(n) > 28 || !idNameRE.MatchString(n) {
		sum := sha256.Sum256([]byte(name))
		clean := strings.Trim(idUnsafeRE.ReplaceAllString(strings.ToLower(name), "-"), "-")
		if len(clean) > 20 {
			clean = strings.Trim(clean[:20], "-")
		}
		if clean == "" {
			clean = "c"
		}
		n = clean + "-" + hex.EncodeToString(sum[:])[:6]
	}
	return fmt.Sprintf("%s_%s_%d", uid, n, attempt)
}

// PodUIDFromContainerID is the pod UID part of a ContainerID.
func PodUIDFromContainerID(id string) (types.UID, bool) {
	uid, _, ok := strings.Cut(id, "_")
	return types.UID(uid), ok
}

// errImagePullShown is how long a failed pull shows as ErrImagePull
// before the pod is synced again and shows ImagePullBackOff (the kubelet
// shows it until its next sync of the pod).
const errImagePullShown = time.Second

// image finds the image of c in the node's namespace, pulling it as the
// pull policy says, and makes sure it is unpacked. When it cannot be had
// it returns a waiting state instead (InvalidImageName,
// ErrImageNeverPull, ErrImagePull, ImagePullBackOff) and when to sync
// again. Pulls of one image for one pod back off as the kubelet's do: 10
// s after the first failure, doubling up to 300 s; an image that is
// present is used at once, whatever the back-off.
func (r *Runtime) image(ctx context.Context, pod *corev1.Pod, ps *podState, c *corev1.Container) (client.Image, *corev1.ContainerStateWaiting, time.Duration, error) {
	named, err := reference.ParseDockerRef(c.Image)
	if err != nil {
		return nil, &corev1.ContainerStateWaiting{Reason: "InvalidImageName", Message: err.Error()}, 0, nil
	}
	ref := named.String()
	policy := PullPolicy(c)
	img, err := r.cfg.Client.GetImage(ctx, ref)
	present := err == nil
	if err != nil && !errdefs.IsNotFound(err) {
		return nil, nil, 0, fmt.Errorf("runtime: look up image %s: %w", ref, err)
	}
	switch {
	case present && (policy != corev1.PullAlways || images.Imported(img)):
		// An imported image has no registry to be re-resolved against:
		// Always uses it as it is, so `image: busybox` runs offline.
		r.event(pod, corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Container image %q already present on machine", c.Image))
		if err := unpack(ctx, img); err != nil {
			return nil, nil, 0, err
		}
		return img, nil, 0, nil
	case !present && policy == corev1.PullNever:
		return nil, &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull",
			Message: fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)}, 0, nil
	}
	key := string(pod.UID) + " " + ref
	if wait := r.pullWait(key); wait > 0 {
		w := &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: fmt.Sprintf("Back-off pulling image %q", c.Image)}
		if prev := ps.waiting[c.Name]; prev == nil || prev.Reason != w.Reason {
			r.event(pod, corev1.EventTypeNormal, "BackOff", w.Message)
		}
		return nil, w, wait, nil
	}
	creds, err := r.pullCredentials(ctx, pod)
	if err != nil && ctx.Err() != nil {
		return nil, nil, 0, ctx.Err()
	}
	if err != nil {
		// A malformed secret: the pull cannot be made as the pod asks.
		// It is retried with the back-off, as the secret may be fixed.
		delay := r.pullFailed(key)
		r.event(pod, corev1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %v", c.Image, err))
		return nil, &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: err.Error()}, min(errImagePullShown, delay), nil
	}
	r.event(pod, corev1.EventTypeNormal, "Pulling", fmt.Sprintf("Pulling image %q", c.Image))
	began := time.Now()
	pctx, cancel := context.WithCancel(ctx)
	r.mu.Lock()
	r.pulling[pod.UID] = cancel
	r.mu.Unlock()
	img, err = r.puller.Pull(pctx, r.cfg.Namespace, ref, creds...)
	r.mu.Lock()
	delete(r.pulling, pod.UID)
	r.mu.Unlock()
	cancelled := pctx.Err() != nil
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			// The agent is stopping: no verdict on the image.
			return nil, nil, 0, ctx.Err()
		}
		if cancelled {
			// CancelPull: the pod is going away. No verdict either; the
			// pull itself goes on for other pods that wait for it.
			return nil, &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}, 0, nil
		}
		delay := r.pullFailed(key)
		r.event(pod, corev1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %v", c.Image, err))
		return nil, &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: err.Error()}, min(errImagePullShown, delay), nil
	}
	r.pullSucceeded(key)
	r.event(pod, corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Successfully pulled image %q in %s", c.Image,
		time.Since(began).Round(time.Millisecond)))
	return img, nil, 0, nil
}

// pullCredentials reads the registry credentials of pod's
// imagePullSecrets, in order, once per pull attempt (never for an image
// that is present). As the kubelet does, a secret that cannot be read
// (missing, or the API refuses) is left out with a
// FailedToRetrieveImagePullSecret warning and the pull goes on without
// it; a secret that is read but malformed is an error naming it.
func (r *Runtime) pullCredentials(ctx context.Context, pod *corev1.Pod) ([]images.Credential, error) {
	var creds []images.Credential
	var missing []string
	for _, ref := range pod.Spec.ImagePullSecrets {
		if ref.Name == "" {
			continue
		}
		if r.cfg.Lookup == nil {
			missing = append(missing, ref.Name)
			continue
		}
		s, err := r.cfg.Lookup.Secret(ctx, pod.Namespace, ref.Name)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r.cfg.Logger.Warn("read image pull secret", slog.String("pod", pod.Namespace+"/"+pod.Name),
				slog.String("secret", ref.Name), slog.Any("error", err))
			missing = append(missing, ref.Name)
			continue
		}
		c, err := images.SecretCredentials(s)
		if err != nil {
			return nil, err
		}
		creds = append(creds, c...)
	}
	if len(missing) > 0 {
		r.event(pod, corev1.EventTypeWarning, "FailedToRetrieveImagePullSecret", fmt.Sprintf(
			"Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", strings.Join(missing, ", ")))
	}
	return creds, nil
}

// CancelPull stops pod uid's sync from waiting for an image pull, so that
// a pod being deleted is not held up by a slow registry (the kubelet
// cancels a terminating pod's sync the same way). The sync returns with
// the container still waiting; the pull goes on for any other pod that
// needs the image. Safe to call at any time.
func (r *Runtime) CancelPull(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cancel := r.pulling[uid]; cancel != nil {
		cancel()
	}
}

func unpack(ctx context.Context, img client.Image) error {
	ok, err := img.IsUnpacked(ctx, images.Snapshotter)
	if err != nil {
		return fmt.Errorf("runtime: image %s: %w", img.Name(), err)
	}
	if !ok {
		if err := img.Unpack(ctx, images.Snapshotter); err != nil {
			return fmt.Errorf("runtime: unpack %s: %w", img.Name(), err)
		}
	}
	return nil
}

// PullPolicy is c's imagePullPolicy, or, unset, the API server's default
// for its image: Always for the tag latest, written or implied,
// IfNotPresent for any other tag or a digest.
func PullPolicy(c *corev1.Container) corev1.PullPolicy {
	if c.ImagePullPolicy != "" {
		return c.ImagePullPolicy
	}
	named, err := reference.ParseNormalizedNamed(c.Image)
	if err != nil {
		return corev1.PullIfNotPresent
	}
	if _, digested := named.(reference.Digested); digested {
		return corev1.PullIfNotPresent
	}
	if tagged, ok := named.(reference.Tagged); ok && tagged.Tag() != "latest" {
		return corev1.PullIfNotPresent
	}
	return corev1.PullAlways
}

// Pull back-off, as the kubelet's image back-off.
const (
	pullBackoffInitial = 10 * time.Second
	pullBackoffMax     = 300 * time.Second
)

// pullWait is how long pulls of key are still backed off.
func (r *Runtime) pullWait(key string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.pullBackoff[key]
	if !ok {
		return 0
	}
	return max(b.until.Sub(r.cfg.Now()), 0)
}

// pullFailed records a failed pull of key and returns the delay before
// the next: 10 s, then double the last, at most 300 s.
func (r *Runtime) pullFailed(key string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := pullBackoffInitial
	if b, ok := r.pullBackoff[key]; ok {
		d = min(2*b.delay, pullBackoffMax)
	}
	r.pullBackoff[key] = pullBackoff{until: r.cfg.Now().Add(d), delay: d}
	return d
}

func (r *Runtime) pullSucceeded(key string) {
	r.mu.Lock()
	delete(r.pullBackoff, key)
	r.mu.Unlock()
}

// imageID is how the kubelet reports an image: repository@digest.
func imageID(img client.Image) string {
	name := img.Name()
	if named, err := reference.ParseNormalizedNamed(name); err == nil {
		name = named.Name()
	}
	return name + "@" + img.Target().Digest.String()
}

// start creates attempt of container c and starts its task; streak is
// the crash streak (see backoff) the attempt carries.
// It returns when to sync again if the container waits for its image.
func (r *Runtime) start(ctx context.Context, pod *corev1.Pod, ps *podState, c *corev1.Container, isInit bool, attempt, streak int) (time.Duration, error) {
	img, waiting, requeue, err := r.image(ctx, pod, ps, c)
	if err != nil {
		return 0, err
	}
	if waiting != nil {
		if prev := ps.waiting[c.Name]; prev == nil || prev.Reason != waiting.Reason {
			msg := fmt.Sprintf("Error: %s: %s", waiting.Reason, waiting.Message)
			if waiting.Reason == "ErrImagePull" || waiting.Reason == "ImagePullBackOff" {
				msg = "Error: " + waiting.Reason // the pull's own events say why
			}
			r.event(pod, corev1.EventTypeWarning, "Failed", msg)
		}
		ps.waiting[c.Name] = waiting
		return requeue, nil
	}
	return 0, r.create(ctx, pod, ps, c, img, isInit, attempt, streak)
}

// create creates attempt of container c from img and starts its task.
func (r *Runtime) create(ctx context.Context, pod *corev1.Pod, ps *podState, c *corev1.Container, img client.Image, isInit bool, attempt, streak int) error {
	ispec, err := img.Spec(ctx)
	if err != nil {
		return fmt.Errorf("runtime: read image config of %s: %w", img.Name(), err)
	}
	podIP := ""
	if ps.att != nil {
		podIP = ps.att.IP.String()
	} else if r.cfg.NodeIP.IsValid() {
		podIP = r.cfg.NodeIP.String()
	}
	hostIP := ""
	if r.cfg.NodeIP.IsValid() {
		hostIP = r.cfg.NodeIP.String()
	}
	env, err := resolveEnv(ctx, r.cfg.Lookup, envContext{pod: pod, podIP: podIP, hostIP: hostIP,
		nodeName: r.cfg.NodeName, allocatable: r.cfg.Allocatable}, c)
	if err != nil {
		if !isConfigError(err) {
			return err
		}
		ps.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: err.Error()}
		return nil
	}
	id := ContainerID(pod.UID, c.Name, attempt)
	dir := r.PodDir(pod.UID)
	logPath := r.LogPath(pod.UID, c.Name, attempt)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o750); err != nil {
		return err
	}
	termFile := filepath.Join(dir, "termination", fmt.Sprintf("%s-%d", c.Name, attempt))
	if err := os.MkdirAll(filepath.Dir(termFile), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(termFile, nil, 0o666); err != nil {
		return err
	}
	etc := filepath.Join(dir, "etc")
	mounts, err := containerMounts(c, ps.volumes, podFiles{
		hosts: filepath.Join(etc, "hosts"), resolv: filepath.Join(etc, "resolv.conf"), hostname: filepath.Join(etc, "hostname"),
	}, termFile)
	if err != nil {
		ps.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: err.Error()}
		return nil
	}
	args := processArgs(ispec.Config, c, env)
	if len(args) == 0 {
		ps.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: "no command specified"}
		return nil
	}
	cgroup := filepath.Join(r.podCgroup(pod.UID), id)
	hostname := podHostname(pod)
	if pod.Spec.HostNetwork {
		hostname = r.cfg.NodeName
	}
	opts := r.specOpts(pod, c, ispec.Config.User, args, processEnv(ispec.Config, env), workingDir(ispec.Config, c),
		hostname, mounts, cgroup, ps.att)
	labels := map[string]string{
		LabelPodUID: string(pod.UID), LabelPodName: pod.Name, LabelPodNamespace: pod.Namespace,
		LabelContainer: c.Name, LabelAttempt: strconv.Itoa(attempt), LabelImage: c.Image, LabelCgroup: cgroup,
		labelImageID: imageID(img), labelStreak: strconv.Itoa(streak),
	}
	if isInit {
		labels[LabelInit] = "true"
	}
	ctr, err := r.cfg.Client.NewContainer(ctx, id,
		client.WithContainerLabels(labels), // first: it replaces the label map
		client.WithImage(img),
		client.WithImageStopSignal(img, "SIGTERM"),
		client.WithSnapshotter(images.Snapshotter),
		client.WithNewSnapshot(id, img),
		client.WithNewSpec(opts...),
	)
	if errdefs.IsAlreadyExists(err) {
		ctr, err = r.cfg.Client.LoadContainer(ctx, id)
	}
	if err != nil {
		return fmt.Errorf("runtime: create container %s: %w", id, err)
	}
	r.event(pod, corev1.EventTypeNormal, "Created", "Created container "+c.Name)
	info, err := ctr.Info(ctx, client.WithoutRefreshedMetadata)
	if err != nil {
		return err
	}
	return r.startTask(ctx, pod, ps, c, &record{ctr: ctr, labels: info.Labels, name: c.Name, attempt: attempt})
}

// startTask starts the task of a created container. A start that fails
// (say, the command does not exist) is recorded as terminated with reason
// StartError, as the kubelet reports it.
func (r *Runtime) startTask(ctx context.Context, pod *corev1.Pod, ps *podState, c *corev1.Container, rec *record) error {
	task, err := rec.ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		task, err = rec.ctr.NewTask(ctx, r.logCreator(r.LogPath(pod.UID, c.Name, rec.attempt)))
	}
	if err != nil {
		return r.startError(ctx, pod, ps, rec, nil, err)
	}
	if err := task.Start(ctx); err != nil {
		return r.startError(ctx, pod, ps, rec, task, err)
	}
	// The shim has opened the FIFOs since the task's creation.
	r.releaseLogs(rec.ctr.ID())
	if _, err := rec.ctr.SetLabels(ctx, map[string]string{labelStartedAt: r.cfg.Now().UTC().Format(time.RFC3339Nano)}); err != nil {
		return fmt.Errorf("runtime: label %s: %w", rec.ctr.ID(), err)
	}
	delete(ps.waiting, c.Name)
	r.event(pod, corev1.EventTypeNormal, "Started", "Started container "+c.Name)
	return r.postStart(ctx, pod, ps, c, rec)
}

func (r *Runtime) startError(ctx context.Context, pod *corev1.Pod, ps *podState, rec *record, task client.Task, cause error) error {
	if task != nil {
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			r.cfg.Logger.Warn("delete task after failed start", slog.String("container", rec.ctr.ID()), slog.Any("error", err))
		}
	}
	r.finishLogs(rec.ctr.ID())
	now := r.cfg.Now().UTC().Format(time.RFC3339Nano)
	msg := cause.Error()
	if len(msg) > 4000 {
		msg = msg[:4000]
	}
	if _, err := rec.ctr.SetLabels(ctx, map[string]string{
		labelStartedAt: now, labelFinishedAt: now, labelExitCode: "128", labelReason: "StartError", labelMessage: msg,
	}); err != nil {
		return fmt.Errorf("runtime: record start error of %s: %w", rec.ctr.ID(), err)
	}
	ps.reaped[rec.ctr.ID()] = true
	delete(ps.waiting, rec.name)
	r.event(pod, corev1.EventTypeWarning, "Failed", "Error: "+msg)
	return nil
}

// observe reports the state of one container attempt. A task that has
// stopped is reaped: its exit is recorded in the container's labels and
// the task deleted, which lets its shim exit.
func (r *Runtime) observe(ctx context.Context, pod *corev1.Pod, ps *podState, rec *record) (observed, error) {
	o := observed{name: rec.name, containerID: "containerd://" + rec.ctr.ID(), image: rec.labels[LabelImage],
		imageID: rec.labels[labelImageID], restarts: int32(rec.attempt)}
	if t := terminatedFromLabels(rec.labels); t != nil {
		o.terminated = t
		if !ps.reaped[rec.ctr.ID()] {
			// A crash between recording the exit and deleting the task
			// leaves the task behind.
			if task, err := rec.ctr.Task(ctx, nil); err == nil {
				_, _ = task.Delete(ctx, client.WithProcessKill)
			}
			r.finishLogs(rec.ctr.ID())
			ps.reaped[rec.ctr.ID()] = true
		}
		return o, nil
	}
	started := parseTime(rec.labels[labelStartedAt])
	task, err := rec.ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		if started.IsZero() {
			o.waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
			return o, nil
		}
		// Started once, and its task is gone without a record: containerd
		// lost it (its state directory went away).
		t := &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "ContainerStatusUnknown",
			Message: "The container could not be located", StartedAt: mtime(started), FinishedAt: mtime(r.cfg.Now())}
		if err := r.record(ctx, rec, t); err != nil {
			return o, err
		}
		o.terminated = t
		return o, nil
	}
	if err != nil {
		return o, fmt.Errorf("runtime: task of %s: %w", rec.ctr.ID(), err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return o, fmt.Errorf("runtime: status of %s: %w", rec.ctr.ID(), err)
	}
	switch st.Status {
	case client.Stopped:
		t, err := r.reap(ctx, pod, rec, task, st)
		if err != nil {
			return o, err
		}
		ps.reaped[rec.ctr.ID()] = true
		o.terminated = t
	case client.Created:
		r.attachLogs(ctx, rec, r.LogPath(pod.UID, rec.name, rec.attempt))
		o.waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	default:
		// The first sight of a running task in this process: after an
		// agent restart, its output is re-attached to here.
		r.attachLogs(ctx, rec, r.LogPath(pod.UID, rec.name, rec.attempt))
		o.running = &corev1.ContainerStateRunning{StartedAt: mtime(started)}
	}
	return o, nil
}

// reap records a stopped task's exit and deletes the task.
func (r *Runtime) reap(ctx context.Context, pod *corev1.Pod, rec *record, task client.Task, st client.Status) (*corev1.ContainerStateTerminated, error) {
	code := int32(st.ExitStatus)
	t := &corev1.ContainerStateTerminated{ExitCode: code, StartedAt: mtime(parseTime(rec.labels[labelStartedAt])),
		FinishedAt: mtime(st.ExitTime)}
	if st.ExitTime.IsZero() {
		t.FinishedAt = mtime(r.cfg.Now())
	}
	switch {
	case oomKills(rec.labels[LabelCgroup]) > 0:
		t.Reason = "OOMKilled"
	case code == 0:
		t.Reason = "Completed"
	default:
		t.Reason = "Error"
	}
	if code > 128 && code < 128+65 {
		t.Signal = code - 128
	}
	// The last output must be in the log for FallbackToLogsOnError (and
	// before the exit shows, for logs --previous).
	r.drainLogs(rec.ctr.ID())
	t.Message = r.terminationMessage(pod, rec, code)
	if err := r.record(ctx, rec, t); err != nil {
		return nil, err
	}
	if _, err := task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("runtime: delete task %s: %w", rec.ctr.ID(), err)
	}
	r.finishLogs(rec.ctr.ID())
	return t, nil
}

// record stores a terminated state in the container's labels.
func (r *Runtime) record(ctx context.Context, rec *record, t *corev1.ContainerStateTerminated) error {
	l := map[string]string{
		labelExitCode:   strconv.Itoa(int(t.ExitCode)),
		labelReason:     t.Reason,
		labelFinishedAt: t.FinishedAt.UTC().Format(time.RFC3339Nano),
	}
	if t.Message != "" {
		l[labelMessage] = t.Message
	}
	if _, err := rec.ctr.SetLabels(ctx, l); err != nil {
		return fmt.Errorf("runtime: record exit of %s: %w", rec.ctr.ID(), err)
	}
	for k, v := range l {
		rec.labels[k] = v
	}
	return nil
}

// terminationMessage reads the container's termination message file, or
// for FallbackToLogsOnError after a failure the end of its log; at most
// 4 KiB (containerd labels are limited).
func (r *Runtime) terminationMessage(pod *corev1.Pod, rec *record, code int32) string {
	const max = 4000
	b, _ := os.ReadFile(filepath.Join(r.PodDir(pod.UID), "termination", fmt.Sprintf("%s-%d", rec.name, rec.attempt)))
	if len(b) == 0 && code != 0 {
		for _, c := range allContainers(pod) {
			if c.Name == rec.name && c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
				b, _ = os.ReadFile(r.LogPath(pod.UID, rec.name, rec.attempt))
				b = crilog.Decode(b)
				lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
				if len(lines) > 80 {
					lines = lines[len(lines)-80:]
				}
				b = []byte(strings.Join(lines, "\n"))
				if len(b) > 2048 {
					b = b[len(b)-2048:]
				}
			}
		}
	}
	if len(b) > max {
		b = b[:max]
	}
	return string(b)
}

func terminatedFromLabels(l map[string]string) *corev1.ContainerStateTerminated {
	v, ok := l[labelExitCode]
	if !ok {
		return nil
	}
	code, _ := strconv.Atoi(v)
	t := &corev1.ContainerStateTerminated{ExitCode: int32(code), Reason: l[labelReason], Message: l[labelMessage],
		StartedAt: mtime(parseTime(l[labelStartedAt])), FinishedAt: mtime(parseTime(l[labelFinishedAt]))}
	if code > 128 && code < 128+65 {
		t.Signal = int32(code - 128)
	}
	return t
}

// status observes every container of pod and computes the pod status.
func (r *Runtime) status(ctx context.Context, pod *corev1.Pod, ps *podState) (corev1.PodStatus, error) {
	latest, all, err := r.records(ctx, pod.UID)
	if err != nil {
		return corev1.PodStatus{}, err
	}
	previous := map[string]*record{}
	for _, rec := range all {
		if l := latest[rec.name]; l != nil && rec.attempt == l.attempt-1 {
			previous[rec.name] = rec
		}
	}
	obs := func(cs []corev1.Container) ([]observed, error) {
		var out []observed
		for i := range cs {
			c := &cs[i]
			rec := latest[c.Name]
			if rec == nil {
				o := observed{name: c.Name, image: c.Image, waiting: ps.waiting[c.Name]}
				if o.waiting == nil {
					o.waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
				}
				out = append(out, o)
				continue
			}
			o, err := r.observe(ctx, pod, ps, rec)
			if err != nil {
				return nil, err
			}
			if prev := previous[c.Name]; prev != nil {
				o.lastTerminated = terminatedFromLabels(prev.labels)
			}
			if w := ps.waiting[c.Name]; w != nil && o.running == nil {
				o.waiting, o.terminated, o.lastTerminated = w, nil, o.terminated
			}
			out = append(out, o)
		}
		return out, nil
	}
	initObs, err := obs(pod.Spec.InitContainers)
	if err != nil {
		return corev1.PodStatus{}, err
	}
	mainObs, err := obs(pod.Spec.Containers)
	if err != nil {
		return corev1.PodStatus{}, err
	}
	if r.cfg.Startup != nil {
		for i := range mainObs {
			if pod.Spec.Containers[i].StartupProbe == nil || mainObs[i].running == nil {
				continue
			}
			if started, known := r.cfg.Startup(pod.UID, mainObs[i].name); !started || !known {
				mainObs[i].notStarted, mainObs[i].unready = true, true
			}
		}
	}
	if r.cfg.Readiness != nil {
		for i := range mainObs {
			if pod.Spec.Containers[i].ReadinessProbe == nil || mainObs[i].running == nil {
				continue
			}
			if ready, known := r.cfg.Readiness(pod.UID, mainObs[i].name); !ready || !known {
				mainObs[i].unready = true
			}
		}
	}
	podIP := ""
	if ps.att != nil {
		podIP = ps.att.IP.String()
	} else if pod.Spec.HostNetwork && r.cfg.NodeIP.IsValid() {
		podIP = r.cfg.NodeIP.String()
	} else if r.cfg.Network != nil && !pod.Spec.HostNetwork {
		// Not set up by this process yet (PodStatus after a restart).
		if ip, ok, err := r.cfg.Network.Address(string(pod.UID)); err == nil && ok {
			podIP = ip.String()
		}
	}
	hostIP := ""
	if r.cfg.NodeIP.IsValid() {
		hostIP = r.cfg.NodeIP.String()
	}
	return podStatus(pod, initObs, mainObs, podIP, hostIP, ps.start, r.cfg.Now()), nil
}

// KillPod stops every running container of pod: the stop signal (the
// image's, else SIGTERM), then SIGKILL once grace has passed, all
// containers in parallel, and records their exits. From then on SyncPod
// starts nothing for this pod. The containers, network and files stay
// until RemovePod.
func (r *Runtime) KillPod(ctx context.Context, pod *corev1.Pod, grace time.Duration) error {
	if err := checkPod(pod); err != nil {
		return err
	}
	ctx = r.ctx(ctx)
	ps := r.state(pod.UID)
	ps.cancelHooks()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.terminating = true
	_, all, err := r.records(ctx, pod.UID)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(all))
	for i, rec := range all {
		if terminatedFromLabels(rec.labels) != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.stop(ctx, pod, ps, rec, grace, "")
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stop stops one container attempt: a Killing event (killMsg, else
// "Stopping container <name>"), its preStop hook within grace, the stop
// signal, SIGKILL when what is left of grace has passed; then it records
// the exit.
func (r *Runtime) stop(ctx context.Context, pod *corev1.Pod, ps *podState, rec *record, grace time.Duration, killMsg string) error {
	task, err := rec.ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	st, err := task.Status(ctx)
	if err != nil {
		return err
	}
	if st.Status == client.Created {
		_, err := task.Delete(ctx, client.WithProcessKill)
		r.finishLogs(rec.ctr.ID())
		return err
	}
	if st.Status != client.Stopped {
		exitC, err := task.Wait(ctx)
		if err != nil {
			return fmt.Errorf("runtime: wait for %s: %w", rec.ctr.ID(), err)
		}
		if killMsg == "" {
			killMsg = "Stopping container " + rec.name
		}
		r.event(pod, corev1.EventTypeNormal, "Killing", killMsg)
		// The grace clock covers the preStop hook and the wait after
		// the signal.
		grace = r.preStop(ctx, pod, ps, rec, grace)
		sig, err := client.GetStopSignal(ctx, rec.ctr, syscall.SIGTERM)
		if err != nil {
			sig = syscall.SIGTERM
		}
		if err := task.Kill(ctx, sig); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("runtime: signal %s: %w", rec.ctr.ID(), err)
		}
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-exitC:
		case <-timer.C:
			if err := task.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("runtime: kill %s: %w", rec.ctr.ID(), err)
			}
			select {
			case <-exitC:
			case <-ctx.Done():
				return ctx.Err()
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		if st, err = task.Status(ctx); err != nil {
			return err
		}
	}
	_, err = r.reap(ctx, pod, rec, task, st)
	return err
}

// RemovePod removes everything pod uid left on the node: tasks (killed
// at once if any still run), containers and their snapshots, the network
// (and its data-plane attachment), volumes, files and cgroups. It is
// idempotent, and works from the UID alone, for pods the API no longer
// has. After it returns, the agent may delete the pod object.
func (r *Runtime) RemovePod(ctx context.Context, uid types.UID) error {
	ctx = r.ctx(ctx)
	ps := r.state(uid)
	ps.cancelHooks()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.terminating = true
	_, all, err := r.records(ctx, uid)
	if err != nil {
		return err
	}
	var errs []error
	for _, rec := range all {
		if task, err := rec.ctr.Task(ctx, nil); err == nil {
			if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("runtime: delete task %s: %w", rec.ctr.ID(), err))
				continue
			}
		}
		r.finishLogs(rec.ctr.ID())
		if err := rec.ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("runtime: delete container %s: %w", rec.ctr.ID(), err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if r.cfg.Attacher != nil && r.cfg.Network != nil {
		// Also after a restart, when this process never attached the pod:
		// DetachPod is idempotent.
		if ip, ok, err := r.cfg.Network.Address(string(uid)); err == nil && ok {
			meta := r.readMeta(uid)
			p := &corev1.Pod{}
			p.Namespace, p.Name = meta.Namespace, meta.Name
			att := &podnet.Attachment{HostIfName: podnet.HostIfName(string(uid)), IP: ip}
			if ps.att != nil {
				att = ps.att
			}
			if err := r.cfg.Attacher.DetachPod(ctx, dpPod(p, att)); err != nil {
				errs = append(errs, fmt.Errorf("runtime: detach pod from data plane: %w", err))
			}
		}
	}
	if r.cfg.Network != nil {
		if err := r.cfg.Network.Teardown(ctx, string(uid)); err != nil {
			errs = append(errs, err)
		}
	}
	dir := r.PodDir(uid)
	if err := unmountUnder(dir); err != nil {
		errs = append(errs, err)
	} else if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("runtime: remove %s: %w", dir, err))
	}
	if err := RemoveCgroup(r.podCgroup(uid)); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	r.mu.Lock()
	delete(r.pods, uid)
	for k := range r.pullBackoff {
		if strings.HasPrefix(k, string(uid)+" ") {
			delete(r.pullBackoff, k)
		}
	}
	r.mu.Unlock()
	return nil
}

func (r *Runtime) readMeta(uid types.UID) podMeta {
	var m podMeta
	if b, err := os.ReadFile(filepath.Join(r.PodDir(uid), "pod.json")); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

// PodRef names a pod the node holds state for.
type PodRef struct {
	UID             types.UID
	Namespace, Name string
}

// ListPods returns every pod the node holds containers or files for, so
// the agent can remove those the API no longer has (RemovePod).
func (r *Runtime) ListPods(ctx context.Context) ([]PodRef, error) {
	ctx = r.ctx(ctx)
	seen := map[types.UID]PodRef{}
	ctrs, err := r.cfg.Client.Containers(ctx, fmt.Sprintf(`labels.%q`, LabelPodUID))
	if err != nil {
		return nil, fmt.Errorf("runtime: list containers: %w", err)
	}
	for _, c := range ctrs {
		info, err := c.Info(ctx, client.WithoutRefreshedMetadata)
		if err != nil {
			return nil, err
		}
		uid := types.UID(info.Labels[LabelPodUID])
		seen[uid] = PodRef{UID: uid, Namespace: info.Labels[LabelPodNamespace], Name: info.Labels[LabelPodName]}
	}
	ents, err := os.ReadDir(r.cfg.StateDir)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	for _, e := range ents {
		uid := types.UID(e.Name())
		if _, ok := seen[uid]; !ok && e.IsDir() {
			m := r.readMeta(uid)
			seen[uid] = PodRef{UID: uid, Namespace: m.Namespace, Name: m.Name}
		}
	}
	out := make([]PodRef, 0, len(seen))
	for _, p := range seen {
		out = append(out, p)
	}
	return out, nil
}

// Watch calls notify with a pod's UID whenever one of its containers
// exits, until ctx ends, so the agent can sync that pod and report its
// status at once instead of at its next resync.
func (r *Runtime) Watch(ctx context.Context, notify func(types.UID)) error {
	ch, errc := r.cfg.Client.Subscribe(ctx, fmt.Sprintf(`namespace==%q,topic=="/tasks/exit"`, r.cfg.Namespace))
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("runtime: containerd events: %w", err)
		case env, ok := <-ch:
			if !ok {
				return nil
			}
			id := exitContainerID(env.Event)
			if uid, ok := PodUIDFromContainerID(id); ok {
				notify(uid)
			}
		}
	}
}

func (r *Runtime) event(pod *corev1.Pod, typ, reason, msg string) {
	if r.cfg.Recorder != nil {
		r.cfg.Recorder(pod, typ, reason, msg)
	}
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// specOpts builds the OCI spec of one container.
func (r *Runtime) specOpts(pod *corev1.Pod, c *corev1.Container, imageUser string, args, env []string, cwd, hostname string,
	mounts []specs.Mount, cgroup string, att *podnet.Attachment) []oci.SpecOpts {
	return buildSpecOpts(specInput{
		pod: pod, c: c, imageUser: imageUser, args: args, env: env, cwd: cwd, hostname: hostname,
		mounts: mounts, cgroup: cgroup, att: att, nodeNetNS: r.nodeNetNS(),
	})
}

func mtime(t time.Time) metav1.Time {
	if t.IsZero() {
		return metav1.Time{}
	}
	return metav1.NewTime(t)
}

// nodeNetNS is the namespace hostNetwork pods join: Config.NodeNetNS, or
// this process's when that is not the host's, or "" for the host's.
func (r *Runtime) nodeNetNS() string {
	if r.cfg.NodeNetNS != "" {
		return r.cfg.NodeNetNS
	}
	var self, init unix.Stat_t
	if unix.Stat("/proc/self/ns/net", &self) == nil && unix.Stat("/proc/1/ns/net", &init) == nil && self.Ino != init.Ino {
		return fmt.Sprintf("/proc/%d/ns/net", os.Getpid())
	}
	return ""
}

// KillContainer stops container name of pod (its stop signal, then
// SIGKILL after grace) if its latest attempt is
// containerID ("containerd://<id>") and still runs, as the kubelet does
// when a liveness or startup probe fails, after its preStop hook; SyncPod
// then restarts it as the restart policy says. reason is the message of
// the Killing event.
func (r *Runtime) KillContainer(ctx context.Context, pod *corev1.Pod, name, containerID, reason string, grace time.Duration) error {
	if err := checkPod(pod); err != nil {
		return err
	}
	ctx = r.ctx(ctx)
	ps := r.state(pod.UID)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.terminating {
		return nil
	}
	latest, _, err := r.records(ctx, pod.UID)
	if err != nil {
		return err
	}
	rec := latest[name]
	if rec == nil || "containerd://"+rec.ctr.ID() != containerID || terminatedFromLabels(rec.labels) != nil {
		return nil
	}
	return r.stop(ctx, pod, ps, rec, grace, reason)
}

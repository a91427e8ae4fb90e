package printers

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
)

func col(name, typ string, priority int32, desc string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Priority: priority, Description: desc}
}

var (
	containersColumn = col("Containers", "string", wide, "Names of each container in the template.")
	imagesColumn     = col("Images", "string", wide, "Images referenced by each container in the template.")
	selectorColumn   = col("Selector", "string", wide, "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.")
)

func init() {
	register(&corev1.Pod{}, []metav1.TableColumnDefinition{
		nameColumn,
		col("Ready", "string", standard, "The aggregate readiness state of this pod for accepting traffic."),
		col("Status", "string", standard, "The aggregate status of the containers in this pod."),
		col("Restarts", "string", standard, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
		ageColumn,
		col("IP", "string", wide, "The IP address assigned to this pod."),
		col("Node", "string", wide, "The node this pod was scheduled to."),
		col("Nominated Node", "string", wide, "The node the scheduler nominated for this pod once preemption completes."),
		col("Readiness Gates", "string", wide, "The readiness gates of this pod that hold."),
	}, podCells)

	register(&corev1.Service{}, []metav1.TableColumnDefinition{
		nameColumn,
		col("Type", "string", standard, "The type of service."),
		col("Cluster-IP", "string", standard, "The cluster IP of the service."),
		col("External-IP", "string", standard, "The external IPs of the service."),
		col("Port(s)", "string", standard, "The ports the service exposes."),
		ageColumn,
		col("Selector", "string", wide, "Route service traffic to pods with label keys and values matching this selector."),
	}, serviceCells)

	register(&appsv1.Deployment{}, []metav1.TableColumnDefinition{
		nameColumn,
		col("Ready", "string", standard, "Number of the pod with ready state."),
		col("Up-to-date", "integer", standard, "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
		col("Available", "integer", standard, "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
		ageColumn, containersColumn, imagesColumn, selectorColumn,
	}, deploymentCells)

	register(&appsv1.ReplicaSet{}, []metav1.TableColumnDefinition{
		nameColumn,
		col("Desired", "integer", standard, "Replicas is the number of desired replicas."),
		col("Current", "integer", standard, "Replicas is the most recently observed number of replicas."),
		col("Ready", "integer", standard, "The number of ready replicas for this replica set."),
		ageColumn, containersColumn, imagesColumn, selectorColumn,
	}, replicaSetCells)

	register(&appsv1.DaemonSet{}, []metav1.TableColumnDefinition{
		nameColumn,
		col("Desired", "integer", standard, "The total number of nodes that should be running the daemon pod."),
		col("Current", "integer", standard, "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod."),
		col("Ready", "integer", standard, "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready."),
		col("Up-to-date", "integer", standard, "The total number of nodes that are running updated daemon pod."),
		col("Available", "integer", standard, "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available."),
		col("Node Selector", "string", standard, "NodeSelector is a selector which must be true for the pod to fit on a node."),
		ageColumn, containersColumn, imagesColumn, selectorColumn,
	}, daemonSetCells)

	register(&appsv1.StatefulSet{}, []metav1.TableColumnDefinition{
		nameColumn,
		col("Ready", "string", standard, "Number of the pod with ready state."),
		ageColumn, containersColumn, imagesColumn,
	}, statefulSetCells)

	register(&appsv1.ControllerRevision{}, []metav1.TableColumnDefinition{
		nameColumn,
		col("Controller", "string", standard, "Controller of the object."),
		col("Revision", "integer", standard, "Revision indicates the revision of the state represented by Data."),
		ageColumn,
	}, controllerRevisionCells)

	register(&batchv1.Job{}, []metav1.TableColumnDefinition{
		nameColumn,
		col("Status", "string", standard, "Status of the job."),
		col("Completions", "string", standard, "The completion status of the job."),
		col("Duration", "string", standard, "Time required to complete the job."),
		ageColumn, containersColumn, imagesColumn, selectorColumn,
	}, jobCells)

	register(&batchv1.CronJob{}, []metav1.TableColumnDefinition{
		nameColumn,
		col("Schedule", "string", standard, "The schedule in Cron format."),
		col("Timezone", "string", standard, "The time zone name for the given schedule."),
		col("Suspend", "boolean", standard, "This flag tells the controller to suspend subsequent executions."),
		col("Active", "integer", standard, "A list of pointers to currently running jobs."),
		col("Last Schedule", "string", standard, "Information when was the last time the job was successfully scheduled."),
		ageColumn, containersColumn, imagesColumn, selectorColumn,
	}, cronJobCells)

	register(&corev1.Node{}, []metav1.TableColumnDefinition{
		nameColumn,
		col("Status", "string", standard, "The status of the node."),
		col("Roles", "string", standard, "The roles of the node."),
		ageColumn,
		col("Version", "string", standard, "Kubelet Version reported by the node."),
		col("Internal-IP", "string", wide, "List of addresses reachable to the node."),
		col("External-IP", "string", wide, "List of addresses reachable to the node."),
		col("OS-Image", "string", wide, "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
		col("Kernel-Version", "string", wide, "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
		col("Container-Runtime", "string", wide, "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2)."),
	}, nodeCells)

	register(&corev1.Namespace{}, []metav1.TableColumnDefinition{
		nameColumn,
		col("Status", "string", standard, "The status of the namespace."),
		ageColumn,
	}, func(obj runtime.Object, now time.Time) []any {
		o := obj.(*corev1.Namespace)
		return []any{o.Name, string(o.Status.Phase), Age(o.CreationTimestamp, now)}
	})

	register(&corev1.ConfigMap{}, []metav1.TableColumnDefinition{
		nameColumn,
		col("Data", "string", standard, "Data contains the configuration data."),
		ageColumn,
	}, func(obj runtime.Object, now time.Time) []any {
		o := obj.(*corev1.ConfigMap)
		return []any{o.Name, int64(len(o.Data) + len(o.BinaryData)), Age(o.CreationTimestamp, now)}
	})

	register(&corev1.Secret{}, []metav1.TableColumnDefinition{
		nameColumn,
		col("Type", "string", standard, "The type of the secret."),
		col("Data", "string", standard, "The number of entries in the secret."),
		ageColumn,
	}, func(obj runtime.Object, now time.Time) []any {
		o := obj.(*corev1.Secret)
		return []any{o.Name, string(o.Type), int64(len(o.Data)), Age(o.CreationTimestamp, now)}
	})

	register(&corev1.Endpoints{}, []metav1.TableColumnDefinition{
		nameColumn,
		col("Endpoints", "string", standard, "Endpoints of the service."),
		ageColumn,
	}, func(obj runtime.Object, now time.Time) []any {
		o := obj.(*corev1.Endpoints)
		return []any{o.Name, formatEndpoints(o), Age(o.CreationTimestamp, now)}
	})

	register(&discoveryv1.EndpointSlice{}, []metav1.TableColumnDefinition{
		nameColumn,
		col("AddressType", "string", standard, "The type of addresses in this slice."),
		col("Ports", "string", standard, "The ports of this slice."),
		col("Endpoints", "string", standard, "The addresses of this slice."),
		ageColumn,
	}, endpointSliceCells)

	register(&corev1.Event{}, []metav1.TableColumnDefinition{
		col("Last Seen", "string", standard, "The time at which the most recent occurrence of this event was recorded."),
		col("Type", "string", standard, "Type of this event (Normal, Warning), new types could be added in the future."),
		col("Reason", "string", standard, "The reason for this event."),
		col("Object", "string", standard, "The object that this event is about."),
		col("Subobject", "string", wide, "The subobject (a field path) that this event is about."),
		col("Source", "string", wide, "The component reporting this event."),
		col("Message", "string", standard, "A human-readable description of the status of this operation."),
		col("First Seen", "string", wide, "The time at which the event was first recorded."),
		col("Count", "string", wide, "The number of times this event has occurred."),
		{Name: "Name", Type: "string", Format: "name", Priority: wide, Description: nameColumn.Description},
	}, eventCells)

	register(&coordinationv1.Lease{}, []metav1.TableColumnDefinition{
		nameColumn,
		col("Holder", "string", standard, "The holder of the lease."),
		ageColumn,
	}, func(obj runtime.Object, now time.Time) []any {
		o := obj.(*coordinationv1.Lease)
		holder := ""
		if o.Spec.HolderIdentity != nil {
			holder = *o.Spec.HolderIdentity
		}
		return []any{o.Name, holder, Age(o.CreationTimestamp, now)}
	})

	register(&autoscalingv2.HorizontalPodAutoscaler{}, []metav1.TableColumnDefinition{
		nameColumn,
		col("Reference", "string", standard, "The target of the autoscaler."),
		col("Targets", "string", standard, "The current and target values of the autoscaler's metrics."),
		col("MinPods", "string", standard, "The lower limit for the number of pods."),
		col("MaxPods", "integer", standard, "The upper limit for the number of pods."),
		col("Replicas", "integer", standard, "The current number of replicas."),
		ageColumn,
	}, hpaCells)

	register(&certificatesv1.CertificateSigningRequest{}, []metav1.TableColumnDefinition{
		nameColumn,
		ageColumn,
		col("SignerName", "string", standard, "The signer the request is for."),
		col("Requestor", "string", standard, "Name of the user who requested the certificate."),
		col("RequestedDuration", "string", standard, "The duration the requester asked the certificate to be valid for."),
		col("Condition", "string", standard, "The conditions of the request."),
	}, csrCells)
}

func podCells(obj runtime.Object, now time.Time) []any {
	pod := obj.(*corev1.Pod)
	restarts, restartableInitRestarts := 0, 0
	total := len(pod.Spec.Containers)
	ready := 0
	var lastRestart, lastRestartableInitRestart time.Time
	reason := string(pod.Status.Phase)
	if pod.Status.Reason != "" {
		reason = pod.Status.Reason
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonSchedulingGated {
			reason = corev1.PodReasonSchedulingGated
		}
	}
	restartable := map[string]bool{}
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			restartable[c.Name] = true
			total++
		}
	}
	later := func(cur *time.Time, st corev1.ContainerStatus) {
		if t := st.LastTerminationState.Terminated; t != nil && cur.Before(t.FinishedAt.Time) {
			*cur = t.FinishedAt.Time
		}
	}
	initializing := false
	for i, c := range pod.Status.InitContainerStatuses {
		restarts += int(c.RestartCount)
		later(&lastRestart, c)
		if restartable[c.Name] {
			restartableInitRestarts += int(c.RestartCount)
			later(&lastRestartableInitRestart, c)
		}
		switch {
		case c.State.Terminated != nil && c.State.Terminated.ExitCode == 0:
			continue
		case restartable[c.Name] && c.Started != nil && *c.Started:
			if c.Ready {
				ready++
			}
			continue
		case c.State.Terminated != nil:
			switch {
			case c.State.Terminated.Reason != "":
				reason = "Init:" + c.State.Terminated.Reason
			case c.State.Terminated.Signal != 0:
				reason = fmt.Sprintf("Init:Signal:%d", c.State.Terminated.Signal)
			default:
				reason = fmt.Sprintf("Init:ExitCode:%d", c.State.Terminated.ExitCode)
			}
		case c.State.Waiting != nil && c.State.Waiting.Reason != "" && c.State.Waiting.Reason != "PodInitializing":
			reason = "Init:" + c.State.Waiting.Reason
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
		}
		initializing = true
		break
	}
	if !initializing || podCondition(pod, corev1.PodInitialized) {
		restarts = restartableInitRestarts
		lastRestart = lastRestartableInitRestart
		running := false
		for i := len(pod.Status.ContainerStatuses) - 1; i >= 0; i-- {
			c := pod.Status.ContainerStatuses[i]
			restarts += int(c.RestartCount)
			later(&lastRestart, c)
			switch {
			case c.State.Waiting != nil && c.State.Waiting.Reason != "":
				reason = c.State.Waiting.Reason
			case c.State.Terminated != nil && c.State.Terminated.Reason != "":
				reason = c.State.Terminated.Reason
			case c.State.Terminated != nil && c.State.Terminated.Signal != 0:
				reason = fmt.Sprintf("Signal:%d", c.State.Terminated.Signal)
			case c.State.Terminated != nil:
				reason = fmt.Sprintf("ExitCode:%d", c.State.Terminated.ExitCode)
			case c.Ready && c.State.Running != nil:
				running = true
				ready++
			}
		}
		if reason == "Completed" && running {
			reason = "NotReady"
			if podCondition(pod, corev1.PodReady) {
				reason = "Running"
			}
		}
	}
	terminal := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	if pod.DeletionTimestamp != nil && pod.Status.Reason == "NodeLost" {
		reason = "Unknown"
	} else if pod.DeletionTimestamp != nil && !terminal {
		reason = "Terminating"
	}
	restartsCell := strconv.Itoa(restarts)
	if restarts != 0 && !lastRestart.IsZero() {
		restartsCell = fmt.Sprintf("%d (%s ago)", restarts, Age(metav1.NewTime(lastRestart), now))
	}
	ip := none(firstPodIP(pod))
	gates := "<none>"
	if n := len(pod.Spec.ReadinessGates); n > 0 {
		held := 0
		for _, g := range pod.Spec.ReadinessGates {
			if podCondition(pod, g.ConditionType) {
				held++
			}
		}
		gates = fmt.Sprintf("%d/%d", held, n)
	}
	return []any{pod.Name, fmt.Sprintf("%d/%d", ready, total), reason, restartsCell, Age(pod.CreationTimestamp, now),
		ip, none(pod.Spec.NodeName), none(pod.Status.NominatedNodeName), gates}
}

func firstPodIP(pod *corev1.Pod) string {
	if len(pod.Status.PodIPs) > 0 {
		return pod.Status.PodIPs[0].IP
	}
	return pod.Status.PodIP
}

func podCondition(pod *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func none(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func serviceCells(obj runtime.Object, now time.Time) []any {
	svc := obj.(*corev1.Service)
	clusterIP := "<none>"
	if len(svc.Spec.ClusterIPs) > 0 {
		clusterIP = svc.Spec.ClusterIPs[0]
	} else if svc.Spec.ClusterIP != "" {
		clusterIP = svc.Spec.ClusterIP
	}
	return []any{svc.Name, string(svc.Spec.Type), clusterIP, serviceExternalIP(svc), none(portString(svc.Spec.Ports)),
		Age(svc.CreationTimestamp, now), labels.FormatLabels(svc.Spec.Selector)}
}

func serviceExternalIP(svc *corev1.Service) string {
	switch svc.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		if len(svc.Spec.ExternalIPs) > 0 {
			return strings.Join(svc.Spec.ExternalIPs, ",")
		}
		return "<none>"
	case corev1.ServiceTypeLoadBalancer:
		var ips []string
		for _, in := range svc.Status.LoadBalancer.Ingress {
			switch {
			case in.IP != "":
				ips = append(ips, in.IP)
			case in.Hostname != "":
				ips = append(ips, in.Hostname)
			}
		}
		ips = append(ips, svc.Spec.ExternalIPs...)
		if len(ips) > 0 {
			return strings.Join(ips, ",")
		}
		return "<pending>"
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	}
	return "<unknown>"
}

func portString(ports []corev1.ServicePort) string {
	out := make([]string, 0, len(ports))
	for _, p := range ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		if p.NodePort != 0 {
			out = append(out, fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, proto))
		} else {
			out = append(out, fmt.Sprintf("%d/%s", p.Port, proto))
		}
	}
	return strings.Join(out, ",")
}

func containerCells(cs []corev1.Container) (names, images string) {
	var n, i []string
	for _, c := range cs {
		n = append(n, c.Name)
		i = append(i, c.Image)
	}
	return strings.Join(n, ","), strings.Join(i, ",")
}

func selectorString(s *metav1.LabelSelector) string {
	if s == nil {
		return "<none>"
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return "<invalid>"
	}
	if sel.Empty() {
		return "<none>"
	}
	return sel.String()
}

func int32Or(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

func deploymentCells(obj runtime.Object, now time.Time) []any {
	d := obj.(*appsv1.Deployment)
	names, images := containerCells(d.Spec.Template.Spec.Containers)
	return []any{d.Name, fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, int32Or(d.Spec.Replicas, 1)),
		int64(d.Status.UpdatedReplicas), int64(d.Status.AvailableReplicas), Age(d.CreationTimestamp, now),
		names, images, selectorString(d.Spec.Selector)}
}

func replicaSetCells(obj runtime.Object, now time.Time) []any {
	rs := obj.(*appsv1.ReplicaSet)
	names, images := containerCells(rs.Spec.Template.Spec.Containers)
	return []any{rs.Name, int64(int32Or(rs.Spec.Replicas, 1)), int64(rs.Status.Replicas), int64(rs.Status.ReadyReplicas),
		Age(rs.CreationTimestamp, now), names, images, selectorString(rs.Spec.Selector)}
}

func daemonSetCells(obj runtime.Object, now time.Time) []any {
	ds := obj.(*appsv1.DaemonSet)
	names, images := containerCells(ds.Spec.Template.Spec.Containers)
	return []any{ds.Name, int64(ds.Status.DesiredNumberScheduled), int64(ds.Status.CurrentNumberScheduled),
		int64(ds.Status.NumberReady), int64(ds.Status.UpdatedNumberScheduled), int64(ds.Status.NumberAvailable),
		labels.FormatLabels(ds.Spec.Template.Spec.NodeSelector), Age(ds.CreationTimestamp, now),
		names, images, selectorString(ds.Spec.Selector)}
}

func statefulSetCells(obj runtime.Object, now time.Time) []any {
	s := obj.(*appsv1.StatefulSet)
	names, images := containerCells(s.Spec.Template.Spec.Containers)
	return []any{s.Name, fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, int32Or(s.Spec.Replicas, 1)),
		Age(s.CreationTimestamp, now), names, images}
}

func controllerRevisionCells(obj runtime.Object, now time.Time) []any {
	r := obj.(*appsv1.ControllerRevision)
	controller := "<none>"
	if ref := metav1.GetControllerOf(r); ref != nil {
		kind := strings.ToLower(ref.Kind)
		if gv := strings.SplitN(ref.APIVersion, "/", 2); len(gv) == 2 {
			kind += "." + gv[0]
		}
		controller = kind + "/" + ref.Name
	}
	return []any{r.Name, controller, r.Revision, Age(r.CreationTimestamp, now)}
}

func jobCondition(conds []batchv1.JobCondition, t batchv1.JobConditionType) bool {
	for _, c := range conds {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func jobCells(obj runtime.Object, now time.Time) []any {
	j := obj.(*batchv1.Job)
	var completions string
	switch {
	case j.Spec.Completions != nil:
		completions = fmt.Sprintf("%d/%d", j.Status.Succeeded, *j.Spec.Completions)
	case int32Or(j.Spec.Parallelism, 0) > 1:
		completions = fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, *j.Spec.Parallelism)
	default:
		completions = fmt.Sprintf("%d/1", j.Status.Succeeded)
	}
	var dur string
	switch {
	case j.Status.StartTime == nil:
	case j.Status.CompletionTime == nil:
		dur = duration.HumanDuration(now.Sub(j.Status.StartTime.Time))
	default:
		dur = duration.HumanDuration(j.Status.CompletionTime.Sub(j.Status.StartTime.Time))
	}
	status := "Running"
	switch {
	case jobCondition(j.Status.Conditions, batchv1.JobComplete):
		status = "Complete"
	case jobCondition(j.Status.Conditions, batchv1.JobFailed):
		status = "Failed"
	case j.DeletionTimestamp != nil:
		status = "Terminating"
	case jobCondition(j.Status.Conditions, batchv1.JobSuccessCriteriaMet):
		status = "SuccessCriteriaMet"
	case jobCondition(j.Status.Conditions, batchv1.JobFailureTarget):
		status = "FailureTarget"
	case jobCondition(j.Status.Conditions, batchv1.JobSuspended):
		status = "Suspended"
	}
	names, images := containerCells(j.Spec.Template.Spec.Containers)
	return []any{j.Name, status, completions, dur, Age(j.CreationTimestamp, now), names, images, selectorString(j.Spec.Selector)}
}

func cronJobCells(obj runtime.Object, now time.Time) []any {
	c := obj.(*batchv1.CronJob)
	last := "<none>"
	if c.Status.LastScheduleTime != nil {
		last = Age(*c.Status.LastScheduleTime, now)
	}
	tz := "<none>"
	if c.Spec.TimeZone != nil {
		tz = *c.Spec.TimeZone
	}
	suspend := "<unset>"
	if c.Spec.Suspend != nil {
		suspend = "False"
		if *c.Spec.Suspend {
			suspend = "True"
		}
	}
	names, images := containerCells(c.Spec.JobTemplate.Spec.Template.Spec.Containers)
	return []any{c.Name, c.Spec.Schedule, tz, suspend, int64(len(c.Status.Active)), last, Age(c.CreationTimestamp, now),
		names, images, selectorString(c.Spec.JobTemplate.Spec.Selector)}
}

// NodeRoles are the roles kubectl reads from node-role.kubernetes.io/<role>
// labels and the kubernetes.io/role label, sorted.
func NodeRoles(n *corev1.Node) []string {
	set := map[string]bool{}
	for k, v := range n.Labels {
		switch {
		case strings.HasPrefix(k, "node-role.kubernetes.io/"):
			if r := strings.TrimPrefix(k, "node-role.kubernetes.io/"); r != "" {
				set[r] = true
			}
		case k == "kubernetes.io/role" && v != "":
			set[v] = true
		}
	}
	out := make([]string, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// NodeStatus is kubectl's node STATUS cell: Ready, NotReady or Unknown,
// with SchedulingDisabled when cordoned.
func NodeStatus(n *corev1.Node) string {
	var status []string
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				status = append(status, "Ready")
			} else {
				status = append(status, "NotReady")
			}
		}
	}
	if len(status) == 0 {
		status = append(status, "Unknown")
	}
	if n.Spec.Unschedulable {
		status = append(status, "SchedulingDisabled")
	}
	return strings.Join(status, ",")
}

func nodeAddress(n *corev1.Node, t corev1.NodeAddressType) string {
	for _, a := range n.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return "<none>"
}

func unknown(s string) string {
	if s == "" {
		return "<unknown>"
	}
	return s
}

func nodeCells(obj runtime.Object, now time.Time) []any {
	n := obj.(*corev1.Node)
	roles := strings.Join(NodeRoles(n), ",")
	info := n.Status.NodeInfo
	return []any{n.Name, NodeStatus(n), none(roles), Age(n.CreationTimestamp, now), info.KubeletVersion,
		nodeAddress(n, corev1.NodeInternalIP), nodeAddress(n, corev1.NodeExternalIP),
		unknown(info.OSImage), unknown(info.KernelVersion), unknown(info.ContainerRuntimeVersion)}
}

// formatEndpoints lists up to three ip:port pairs, as kubectl does.
func formatEndpoints(ep *corev1.Endpoints) string {
	if len(ep.Subsets) == 0 {
		return "<none>"
	}
	const max = 3
	var list []string
	count := 0
	for _, ss := range ep.Subsets {
		if len(ss.Ports) == 0 {
			count += len(ss.Addresses)
			for _, a := range ss.Addresses {
				if len(list) < max {
					list = append(list, a.IP)
				}
			}
			continue
		}
		for _, p := range ss.Ports {
			count += len(ss.Addresses)
			for _, a := range ss.Addresses {
				if len(list) < max {
					list = append(list, net.JoinHostPort(a.IP, strconv.Itoa(int(p.Port))))
				}
			}
		}
	}
	ret := strings.Join(list, ",")
	if count > max {
		return fmt.Sprintf("%s + %d more...", ret, count-max)
	}
	if ret == "" {
		return "<none>"
	}
	return ret
}

func endpointSliceCells(obj runtime.Object, now time.Time) []any {
	s := obj.(*discoveryv1.EndpointSlice)
	const max = 3
	ports := "<unset>"
	if len(s.Ports) > 0 {
		var ps []string
		for i, p := range s.Ports {
			if i == max {
				ps[len(ps)-1] += fmt.Sprintf(" + %d more...", len(s.Ports)-max)
				break
			}
			if p.Port == nil {
				ps = append(ps, "<unset>")
			} else {
				ps = append(ps, strconv.Itoa(int(*p.Port)))
			}
		}
		ports = strings.Join(ps, ",")
	}
	eps := "<unset>"
	var addrs []string
	count := 0
	for _, e := range s.Endpoints {
		for _, a := range e.Addresses {
			count++
			if len(addrs) < max {
				addrs = append(addrs, a)
			}
		}
	}
	if len(addrs) > 0 {
		eps = strings.Join(addrs, ",")
		if count > max {
			eps += fmt.Sprintf(" + %d more...", count-max)
		}
	}
	return []any{s.Name, string(s.AddressType), ports, eps, Age(s.CreationTimestamp, now)}
}

func eventCells(obj runtime.Object, now time.Time) []any {
	e := obj.(*corev1.Event)
	first := Age(e.FirstTimestamp, now)
	if e.FirstTimestamp.IsZero() {
		first = microAge(e.EventTime, now)
	}
	last := Age(e.LastTimestamp, now)
	if e.LastTimestamp.IsZero() {
		last = first
	}
	count := e.Count
	if e.Series != nil {
		last = microAge(e.Series.LastObservedTime, now)
		count = e.Series.Count
	} else if count == 0 {
		count = 1
	}
	target := strings.ToLower(e.InvolvedObject.Kind)
	if e.InvolvedObject.Name != "" {
		target += "/" + e.InvolvedObject.Name
	}
	return []any{last, e.Type, e.Reason, target, e.InvolvedObject.FieldPath, EventSource(e),
		strings.TrimSpace(e.Message), first, int64(count), e.Name}
}

// EventSource is "component, host" (or the reporting controller and
// instance) as kubectl prints an event's source.
func EventSource(e *corev1.Event) string {
	comp, inst := e.Source.Component, e.Source.Host
	if comp == "" {
		comp, inst = e.ReportingController, e.ReportingInstance
	}
	if inst == "" {
		return comp
	}
	return comp + ", " + inst
}

func hpaCells(obj runtime.Object, now time.Time) []any {
	h := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	ref := h.Spec.ScaleTargetRef.Kind + "/" + h.Spec.ScaleTargetRef.Name
	minPods := "<unset>"
	if h.Spec.MinReplicas != nil {
		minPods = strconv.Itoa(int(*h.Spec.MinReplicas))
	}
	return []any{h.Name, ref, hpaTargets(h), minPods, int64(h.Spec.MaxReplicas), int64(h.Status.CurrentReplicas), Age(h.CreationTimestamp, now)}
}

func hpaTargets(h *autoscalingv2.HorizontalPodAutoscaler) string {
	if len(h.Spec.Metrics) == 0 {
		return "<none>"
	}
	var out []string
	for i, m := range h.Spec.Metrics {
		if m.Type != autoscalingv2.ResourceMetricSourceType || m.Resource == nil {
			out = append(out, "<unknown>/<unknown>")
			continue
		}
		cur := "<unknown>"
		if i < len(h.Status.CurrentMetrics) {
			if c := h.Status.CurrentMetrics[i].Resource; c != nil {
				switch {
				case c.Current.AverageUtilization != nil:
					cur = fmt.Sprintf("%d%%", *c.Current.AverageUtilization)
				case c.Current.AverageValue != nil:
					cur = c.Current.AverageValue.String()
				}
			}
		}
		target := "<auto>"
		switch {
		case m.Resource.Target.AverageUtilization != nil:
			target = fmt.Sprintf("%d%%", *m.Resource.Target.AverageUtilization)
		case m.Resource.Target.AverageValue != nil:
			target = m.Resource.Target.AverageValue.String()
		}
		out = append(out, fmt.Sprintf("%s: %s/%s", m.Resource.Name, cur, target))
	}
	return strings.Join(out, ", ")
}

func csrCells(obj runtime.Object, now time.Time) []any {
	c := obj.(*certificatesv1.CertificateSigningRequest)
	var conds []string
	for _, cond := range c.Status.Conditions {
		conds = append(conds, string(cond.Type))
	}
	if len(c.Status.Certificate) > 0 {
		conds = append(conds, "Issued")
	}
	cond := "Pending"
	if len(conds) > 0 {
		cond = strings.Join(conds, ",")
	}
	requested := "<none>"
	if c.Spec.ExpirationSeconds != nil {
		requested = duration.HumanDuration(time.Duration(*c.Spec.ExpirationSeconds) * time.Second)
	}
	return []any{c.Name, Age(c.CreationTimestamp, now), c.Spec.SignerName, c.Spec.Username, requested, cond}
}

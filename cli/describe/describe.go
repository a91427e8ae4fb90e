package describe

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"weir.dev/weir/controlplane/printers"
)

// Related is what a description shows beside the object itself.
type Related struct {
	Events []corev1.Event
	// ReplicaSets owned by a Deployment: NewReplicaSet is the one whose
	// template matches, the rest are old.
	NewReplicaSet  *appsv1.ReplicaSet
	OldReplicaSets []*appsv1.ReplicaSet
	// Pods of a ReplicaSet (for its Pods Status line) or on a Node.
	Pods []corev1.Pod
	// EndpointSlices of a Service.
	EndpointSlices []discoveryv1.EndpointSlice
}

// Describe renders obj. now is the clock ages read.
func Describe(obj runtime.Object, rel Related, now time.Time) (string, error) {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 8, 2, ' ', 0)
	w := &writer{out: tw, now: now}
	switch o := obj.(type) {
	case *corev1.Pod:
		w.pod(o)
	case *appsv1.Deployment:
		w.deployment(o, rel)
	case *appsv1.ReplicaSet:
		w.replicaSet(o, rel)
	case *corev1.Service:
		w.service(o, rel)
	case *corev1.Node:
		w.node(o, rel)
	case *corev1.Namespace:
		w.namespace(o)
	case *corev1.ConfigMap:
		w.configMap(o)
	default:
		if err := w.generic(obj); err != nil {
			return "", err
		}
	}
	switch obj.(type) {
	case *corev1.Namespace, *corev1.ConfigMap:
	default:
		w.events(rel.Events)
	}
	if err := tw.Flush(); err != nil {
		return "", err
	}
	return buf.String(), nil
}

type writer struct {
	out io.Writer
	now time.Time
}

// line writes at an indent level of two spaces per level.
func (w *writer) line(level int, format string, a ...any) {
	fmt.Fprintf(w.out, strings.Repeat("  ", level)+format, a...)
}

func (w *writer) age(t metav1.Time) string { return printers.Age(t, w.now) }

func (w *writer) labels(title string, m map[string]string) {
	w.line(0, "%s:\t", title)
	if len(m) == 0 {
		w.line(0, "<none>\n")
		return
	}
	keys := sortedKeys(m)
	for i, k := range keys {
		if i > 0 {
			w.line(0, "\t")
		}
		w.line(0, "%s=%s\n", k, m[k])
	}
}

// skipAnnotations are kubectl's: too long to be useful in a description.
var skipAnnotations = map[string]bool{"kubectl.kubernetes.io/last-applied-configuration": true}

const maxAnnotationLen = 140

func (w *writer) annotations(title string, m map[string]string) {
	w.line(0, "%s:\t", title)
	var keys []string
	for _, k := range sortedKeys(m) {
		if !skipAnnotations[k] {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		w.line(0, "<none>\n")
		return
	}
	for i, k := range keys {
		if i > 0 {
			w.line(0, "\t")
		}
		v := strings.TrimSuffix(m[k], "\n")
		if len(v)+len(k)+2 > maxAnnotationLen || strings.Contains(v, "\n") {
			w.line(0, "%s:\n", k)
			for _, s := range strings.Split(v, "\n") {
				if len(s) > maxAnnotationLen-2 {
					s = s[:maxAnnotationLen-2] + "..."
				}
				w.line(0, "\t  %s\n", s)
			}
			continue
		}
		w.line(0, "%s: %s\n", k, v)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func controller(m metav1.Object) string {
	if ref := metav1.GetControllerOf(m); ref != nil {
		return ref.Kind + "/" + ref.Name
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func (w *writer) events(evs []corev1.Event) {
	if len(evs) == 0 {
		w.line(0, "Events:\t<none>\n")
		return
	}
	evs = append([]corev1.Event(nil), evs...)
	sort.SliceStable(evs, func(i, j int) bool { return lastSeen(evs[i]).Before(lastSeen(evs[j])) })
	w.line(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
	w.line(1, "----\t------\t----\t----\t-------\n")
	for _, e := range evs {
		first := printers.Age(metav1.NewTime(e.EventTime.Time), w.now)
		if e.EventTime.IsZero() {
			first = w.age(e.FirstTimestamp)
		}
		interval := first
		switch {
		case e.Series != nil:
			interval = fmt.Sprintf("%s (x%d over %s)", printers.Age(metav1.NewTime(e.Series.LastObservedTime.Time), w.now), e.Series.Count, first)
		case e.Count > 1:
			interval = fmt.Sprintf("%s (x%d over %s)", w.age(e.LastTimestamp), e.Count, first)
		}
		source := e.Source.Component
		if source == "" {
			source = e.ReportingController
		}
		msg := strings.TrimSpace(e.Message)
		if e.InvolvedObject.FieldPath != "" {
			msg = e.InvolvedObject.FieldPath + ": " + msg
		}
		w.line(1, "%v\t%v\t%s\t%v\t%v\n", e.Type, e.Reason, interval, source, msg)
	}
}

func lastSeen(e corev1.Event) time.Time {
	if !e.LastTimestamp.IsZero() {
		return e.LastTimestamp.Time
	}
	if e.Series != nil {
		return e.Series.LastObservedTime.Time
	}
	if !e.EventTime.IsZero() {
		return e.EventTime.Time
	}
	return e.FirstTimestamp.Time
}

func (w *writer) pod(p *corev1.Pod) {
	w.line(0, "Name:\t%s\n", p.Name)
	w.line(0, "Namespace:\t%s\n", p.Namespace)
	if p.Spec.Priority != nil {
		w.line(0, "Priority:\t%d\n", *p.Spec.Priority)
	}
	if p.Spec.ServiceAccountName != "" {
		w.line(0, "Service Account:\t%s\n", p.Spec.ServiceAccountName)
	}
	if p.Spec.NodeName == "" {
		w.line(0, "Node:\t<none>\n")
	} else {
		w.line(0, "Node:\t%s\n", p.Spec.NodeName+"/"+p.Status.HostIP)
	}
	if p.Status.StartTime != nil {
		w.line(0, "Start Time:\t%s\n", p.Status.StartTime.Time.Format(time.RFC1123Z))
	}
	w.labels("Labels", p.Labels)
	w.annotations("Annotations", p.Annotations)
	if p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded {
		w.line(0, "Status:\tTerminating (lasts %s)\n", w.age(*p.DeletionTimestamp))
		if p.DeletionGracePeriodSeconds != nil {
			w.line(0, "Termination Grace Period:\t%ds\n", *p.DeletionGracePeriodSeconds)
		}
	} else {
		w.line(0, "Status:\t%s\n", p.Status.Phase)
	}
	if p.Status.Reason != "" {
		w.line(0, "Reason:\t%s\n", p.Status.Reason)
	}
	if p.Status.Message != "" {
		w.line(0, "Message:\t%s\n", p.Status.Message)
	}
	w.line(0, "IP:\t%s\n", p.Status.PodIP)
	if len(p.Status.PodIPs) == 0 {
		w.line(0, "IPs:\t<none>\n")
	} else {
		w.line(0, "IPs:\n")
		for _, ip := range p.Status.PodIPs {
			w.line(1, "IP:\t%s\n", ip.IP)
		}
	}
	if c := controller(p); c != "" {
		w.line(0, "Controlled By:\t%s\n", c)
	}
	if p.Status.NominatedNodeName != "" {
		w.line(0, "NominatedNodeName:\t%s\n", p.Status.NominatedNodeName)
	}
	if len(p.Spec.InitContainers) > 0 {
		w.containers("Init Containers", p.Spec.InitContainers, p.Status.InitContainerStatuses, "")
	}
	w.containers("Containers", p.Spec.Containers, p.Status.ContainerStatuses, "")
	if len(p.Status.Conditions) > 0 {
		w.line(0, "Conditions:\n  Type\tStatus\n")
		for _, c := range p.Status.Conditions {
			w.line(1, "%v \t%v \n", c.Type, c.Status)
		}
	}
	w.volumes(p.Spec.Volumes, "")
	w.line(0, "QoS Class:\t%s\n", qosClass(p))
	w.labels("Node-Selectors", p.Spec.NodeSelector)
	w.tolerations("Tolerations", p.Spec.Tolerations)
}

func qosClass(p *corev1.Pod) corev1.PodQOSClass {
	if p.Status.QOSClass != "" {
		return p.Status.QOSClass
	}
	requests, limits, guaranteed := false, false, true
	for _, c := range p.Spec.Containers {
		if len(c.Resources.Requests) > 0 {
			requests = true
		}
		if len(c.Resources.Limits) > 0 {
			limits = true
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			l, ok := c.Resources.Limits[r]
			q, rok := c.Resources.Requests[r]
			if !ok || (rok && q.Cmp(l) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case !requests && !limits:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

func (w *writer) tolerations(title string, ts []corev1.Toleration) {
	w.line(0, "%s:\t", title)
	if len(ts) == 0 {
		w.line(0, "<none>\n")
		return
	}
	for i, t := range ts {
		if i > 0 {
			w.line(0, "\t")
		}
		s := t.Key
		if t.Value != "" {
			s += "=" + t.Value
		}
		if t.Operator == corev1.TolerationOpExists && t.Key != "" && t.Value == "" {
			s += " op=Exists"
		}
		if t.Effect != "" {
			s += ":" + string(t.Effect)
		}
		if t.TolerationSeconds != nil {
			s += fmt.Sprintf(" for %ds", *t.TolerationSeconds)
		}
		w.line(0, "%s\n", s)
	}
}

func portsString(ports []corev1.ContainerPort, host bool) string {
	out := make([]string, 0, len(ports))
	for _, p := range ports {
		n := p.ContainerPort
		if host {
			n = p.HostPort
		}
		s := fmt.Sprintf("%d/%s", n, p.Protocol)
		if p.Name != "" {
			s += " (" + p.Name + ")"
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

func (w *writer) containers(label string, cs []corev1.Container, statuses []corev1.ContainerStatus, space string) {
	st := map[string]corev1.ContainerStatus{}
	for _, s := range statuses {
		st[s.Name] = s
	}
	if len(cs) == 0 {
		w.line(0, "%s%s: <none>\n", space, label)
	} else {
		w.line(0, "%s%s:\n", space, label)
	}
	indent := ""
	if space != "" {
		indent = " "
	}
	for _, c := range cs {
		s, ok := st[c.Name]
		w.line(1, "%s%v:\n", indent, c.Name)
		if ok {
			w.line(2, "Container ID:\t%s\n", s.ContainerID)
		}
		w.line(2, "Image:\t%s\n", c.Image)
		if ok {
			w.line(2, "Image ID:\t%s\n", s.ImageID)
		}
		if ps := portsString(c.Ports, false); strings.Contains(ps, ",") {
			w.line(2, "Ports:\t%s\n", ps)
		} else {
			w.line(2, "Port:\t%s\n", orNone(ps))
		}
		if ps := portsString(c.Ports, true); strings.Contains(ps, ",") {
			w.line(2, "Host Ports:\t%s\n", ps)
		} else {
			w.line(2, "Host Port:\t%s\n", orNone(ps))
		}
		if len(c.Command) > 0 {
			w.line(2, "Command:\n")
			for _, a := range c.Command {
				w.line(3, "%s\n", a)
			}
		}
		if len(c.Args) > 0 {
			w.line(2, "Args:\n")
			for _, a := range c.Args {
				w.line(3, "%s\n", a)
			}
		}
		if ok {
			w.state("State", s.State)
			if s.LastTerminationState.Terminated != nil {
				w.state("Last State", s.LastTerminationState)
			}
			w.line(2, "Ready:\t%v\n", boolString(s.Ready))
			w.line(2, "Restart Count:\t%d\n", s.RestartCount)
		}
		w.resources(c.Resources)
		if c.LivenessProbe != nil {
			w.line(2, "Liveness:\t%s\n", probeString(c.LivenessProbe))
		}
		if c.ReadinessProbe != nil {
			w.line(2, "Readiness:\t%s\n", probeString(c.ReadinessProbe))
		}
		if c.StartupProbe != nil {
			w.line(2, "Startup:\t%s\n", probeString(c.StartupProbe))
		}
		if len(c.Env) == 0 {
			w.line(2, "Environment:\t<none>\n")
		} else {
			w.line(2, "Environment:\n")
			for _, e := range c.Env {
				switch {
				case e.ValueFrom == nil:
					w.line(3, "%s:\t%s\n", e.Name, e.Value)
				case e.ValueFrom.FieldRef != nil:
					w.line(3, "%s:\t (%s:%s)\n", e.Name, e.ValueFrom.FieldRef.APIVersion, e.ValueFrom.FieldRef.FieldPath)
				case e.ValueFrom.ConfigMapKeyRef != nil:
					w.line(3, "%s:\t<set to the key '%s' of config map '%s'>\n", e.Name, e.ValueFrom.ConfigMapKeyRef.Key, e.ValueFrom.ConfigMapKeyRef.Name)
				case e.ValueFrom.SecretKeyRef != nil:
					w.line(3, "%s:\t<set to the key '%s' in secret '%s'>\n", e.Name, e.ValueFrom.SecretKeyRef.Key, e.ValueFrom.SecretKeyRef.Name)
				default:
					w.line(3, "%s:\t<set from a reference>\n", e.Name)
				}
			}
		}
		if len(c.VolumeMounts) == 0 {
			w.line(2, "Mounts:\t<none>\n")
		} else {
			w.line(2, "Mounts:\n")
			mounts := append([]corev1.VolumeMount(nil), c.VolumeMounts...)
			sort.Slice(mounts, func(i, j int) bool { return mounts[i].MountPath < mounts[j].MountPath })
			for _, m := range mounts {
				flag := "rw"
				if m.ReadOnly {
					flag = "ro"
				}
				if m.SubPath != "" {
					flag += fmt.Sprintf(",path=%q", m.SubPath)
				}
				w.line(3, "%s from %s (%s)\n", m.MountPath, m.Name, flag)
			}
		}
	}
}

func boolString(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func (w *writer) state(title string, s corev1.ContainerState) {
	switch {
	case s.Running != nil:
		w.line(2, "%s:\tRunning\n", title)
		w.line(3, "Started:\t%v\n", s.Running.StartedAt.Time.Format(time.RFC1123Z))
	case s.Waiting != nil:
		w.line(2, "%s:\tWaiting\n", title)
		if s.Waiting.Reason != "" {
			w.line(3, "Reason:\t%s\n", s.Waiting.Reason)
		}
		if s.Waiting.Message != "" {
			w.line(3, "Message:\t%s\n", s.Waiting.Message)
		}
	case s.Terminated != nil:
		w.line(2, "%s:\tTerminated\n", title)
		if s.Terminated.Reason != "" {
			w.line(3, "Reason:\t%s\n", s.Terminated.Reason)
		}
		if s.Terminated.Message != "" {
			w.line(3, "Message:\t%s\n", s.Terminated.Message)
		}
		w.line(3, "Exit Code:\t%d\n", s.Terminated.ExitCode)
		if s.Terminated.Signal > 0 {
			w.line(3, "Signal:\t%d\n", s.Terminated.Signal)
		}
		w.line(3, "Started:\t%s\n", s.Terminated.StartedAt.Time.Format(time.RFC1123Z))
		w.line(3, "Finished:\t%s\n", s.Terminated.FinishedAt.Time.Format(time.RFC1123Z))
	default:
		w.line(2, "%s:\tWaiting\n", title)
	}
}

func (w *writer) resources(r corev1.ResourceRequirements) {
	for _, part := range []struct {
		title string
		list  corev1.ResourceList
	}{{"Limits", r.Limits}, {"Requests", r.Requests}} {
		if len(part.list) == 0 {
			continue
		}
		w.line(2, "%s:\n", part.title)
		names := make([]string, 0, len(part.list))
		for n := range part.list {
			names = append(names, string(n))
		}
		sort.Strings(names)
		for _, n := range names {
			q := part.list[corev1.ResourceName(n)]
			w.line(3, "%s:\t%s\n", n, q.String())
		}
	}
}

func probeString(p *corev1.Probe) string {
	attrs := fmt.Sprintf("delay=%ds timeout=%ds period=%ds #success=%d #failure=%d",
		p.InitialDelaySeconds, p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold)
	switch {
	case p.Exec != nil:
		return fmt.Sprintf("exec %v %s", p.Exec.Command, attrs)
	case p.HTTPGet != nil:
		host := p.HTTPGet.Host
		scheme := strings.ToLower(string(p.HTTPGet.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		return fmt.Sprintf("http-get %s://%s:%s%s %s", scheme, host, p.HTTPGet.Port.String(), p.HTTPGet.Path, attrs)
	case p.TCPSocket != nil:
		return fmt.Sprintf("tcp-socket %s:%s %s", p.TCPSocket.Host, p.TCPSocket.Port.String(), attrs)
	case p.GRPC != nil:
		return fmt.Sprintf("grpc <pod>:%d %s", p.GRPC.Port, attrs)
	}
	return fmt.Sprintf("unknown %s", attrs)
}

func (w *writer) volumes(vs []corev1.Volume, space string) {
	if len(vs) == 0 {
		w.line(0, "%sVolumes:\t<none>\n", space)
		return
	}
	w.line(0, "%sVolumes:\n", space)
	indent := ""
	if space != "" {
		indent = " "
	}
	for _, v := range vs {
		w.line(1, "%s%v:\n", indent, v.Name)
		switch {
		case v.EmptyDir != nil:
			w.line(2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n")
			w.line(2, "Medium:\t%s\n", v.EmptyDir.Medium)
			if v.EmptyDir.SizeLimit != nil {
				w.line(2, "SizeLimit:\t%s\n", v.EmptyDir.SizeLimit.String())
			} else {
				w.line(2, "SizeLimit:\t<unset>\n")
			}
		case v.HostPath != nil:
			t := ""
			if v.HostPath.Type != nil {
				t = string(*v.HostPath.Type)
			}
			w.line(2, "Type:\tHostPath (bare host directory volume)\n")
			w.line(2, "Path:\t%v\n", v.HostPath.Path)
			w.line(2, "HostPathType:\t%v\n", t)
		case v.ConfigMap != nil:
			opt := v.ConfigMap.Optional != nil && *v.ConfigMap.Optional
			w.line(2, "Type:\tConfigMap (a volume populated by a ConfigMap)\n")
			w.line(2, "Name:\t%v\n", v.ConfigMap.Name)
			w.line(2, "Optional:\t%v\n", opt)
		case v.Secret != nil:
			opt := v.Secret.Optional != nil && *v.Secret.Optional
			w.line(2, "Type:\tSecret (a volume populated by a Secret)\n")
			w.line(2, "SecretName:\t%v\n", v.Secret.SecretName)
			w.line(2, "Optional:\t%v\n", opt)
		default:
			w.line(2, "<unknown>\n")
		}
	}
}

func (w *writer) podTemplate(t *corev1.PodTemplateSpec) {
	w.line(0, "Pod Template:\n")
	w.labels("  Labels", t.Labels)
	if len(t.Annotations) > 0 {
		w.annotations("  Annotations", t.Annotations)
	}
	if t.Spec.ServiceAccountName != "" {
		w.line(1, "Service Account:\t%s\n", t.Spec.ServiceAccountName)
	}
	if len(t.Spec.InitContainers) > 0 {
		w.containers("Init Containers", t.Spec.InitContainers, nil, "  ")
	}
	w.containers("Containers", t.Spec.Containers, nil, "  ")
	w.volumes(t.Spec.Volumes, "  ")
	w.labels("  Node-Selectors", t.Spec.NodeSelector)
	w.tolerations("  Tolerations", t.Spec.Tolerations)
}

func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func (w *writer) deployment(d *appsv1.Deployment, rel Related) {
	sel, _ := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	w.line(0, "Name:\t%s\n", d.Name)
	w.line(0, "Namespace:\t%s\n", d.Namespace)
	w.line(0, "CreationTimestamp:\t%s\n", d.CreationTimestamp.Time.Format(time.RFC1123Z))
	w.labels("Labels", d.Labels)
	w.annotations("Annotations", d.Annotations)
	w.line(0, "Selector:\t%s\n", sel)
	w.line(0, "Replicas:\t%d desired | %d updated | %d total | %d available | %d unavailable\n",
		replicas(d.Spec.Replicas), d.Status.UpdatedReplicas, d.Status.Replicas, d.Status.AvailableReplicas, d.Status.UnavailableReplicas)
	w.line(0, "StrategyType:\t%s\n", d.Spec.Strategy.Type)
	w.line(0, "MinReadySeconds:\t%d\n", d.Spec.MinReadySeconds)
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		w.line(0, "RollingUpdateStrategy:\t%s max unavailable, %s max surge\n", intstrString(ru.MaxUnavailable), intstrString(ru.MaxSurge))
	}
	w.podTemplate(&d.Spec.Template)
	if len(d.Status.Conditions) > 0 {
		w.line(0, "Conditions:\n  Type\tStatus\tReason\n")
		w.line(1, "----\t------\t------\n")
		for _, c := range d.Status.Conditions {
			w.line(1, "%v \t%v\t%v\n", c.Type, c.Status, c.Reason)
		}
	}
	if len(rel.OldReplicaSets) > 0 || rel.NewReplicaSet != nil {
		w.line(0, "OldReplicaSets:\t%s\n", rsList(rel.OldReplicaSets))
		var n []*appsv1.ReplicaSet
		if rel.NewReplicaSet != nil {
			n = append(n, rel.NewReplicaSet)
		}
		w.line(0, "NewReplicaSet:\t%s\n", rsList(n))
	}
}

func intstrString(v *intstr.IntOrString) string {
	if v == nil {
		return "<nil>"
	}
	return v.String()
}

func rsList(rss []*appsv1.ReplicaSet) string {
	var out []string
	for _, rs := range rss {
		out = append(out, fmt.Sprintf("%s (%d/%d replicas created)", rs.Name, rs.Status.Replicas, replicas(rs.Spec.Replicas)))
	}
	return orNone(strings.Join(out, ", "))
}

func (w *writer) replicaSet(rs *appsv1.ReplicaSet, rel Related) {
	w.line(0, "Name:\t%s\n", rs.Name)
	w.line(0, "Namespace:\t%s\n", rs.Namespace)
	w.line(0, "Selector:\t%s\n", metav1.FormatLabelSelector(rs.Spec.Selector))
	w.labels("Labels", rs.Labels)
	w.annotations("Annotations", rs.Annotations)
	if c := controller(rs); c != "" {
		w.line(0, "Controlled By:\t%s\n", c)
	}
	w.line(0, "Replicas:\t%d current / %d desired\n", rs.Status.Replicas, replicas(rs.Spec.Replicas))
	var running, waiting, succeeded, failed int
	for _, p := range rel.Pods {
		if ref := metav1.GetControllerOf(&p); ref == nil || ref.UID != rs.UID {
			continue
		}
		switch p.Status.Phase {
		case corev1.PodRunning:
			running++
		case corev1.PodPending:
			waiting++
		case corev1.PodSucceeded:
			succeeded++
		case corev1.PodFailed:
			failed++
		}
	}
	w.line(0, "Pods Status:\t%d Running / %d Waiting / %d Succeeded / %d Failed\n", running, waiting, succeeded, failed)
	w.podTemplate(&rs.Spec.Template)
	if len(rs.Status.Conditions) > 0 {
		w.line(0, "Conditions:\n  Type\tStatus\tReason\n")
		w.line(1, "----\t------\t------\n")
		for _, c := range rs.Status.Conditions {
			w.line(1, "%v \t%v\t%v\n", c.Type, c.Status, c.Reason)
		}
	}
}

func (w *writer) service(s *corev1.Service, rel Related) {
	w.line(0, "Name:\t%s\n", s.Name)
	w.line(0, "Namespace:\t%s\n", s.Namespace)
	w.labels("Labels", s.Labels)
	w.annotations("Annotations", s.Annotations)
	w.line(0, "Selector:\t%s\n", labels.FormatLabels(s.Spec.Selector))
	w.line(0, "Type:\t%s\n", s.Spec.Type)
	if s.Spec.IPFamilyPolicy != nil {
		w.line(0, "IP Family Policy:\t%s\n", *s.Spec.IPFamilyPolicy)
	}
	var fams []string
	for _, f := range s.Spec.IPFamilies {
		fams = append(fams, string(f))
	}
	w.line(0, "IP Families:\t%s\n", orNone(strings.Join(fams, ",")))
	w.line(0, "IP:\t%s\n", s.Spec.ClusterIP)
	w.line(0, "IPs:\t%s\n", orNone(strings.Join(s.Spec.ClusterIPs, ",")))
	if len(s.Spec.ExternalIPs) > 0 {
		w.line(0, "External IPs:\t%v\n", strings.Join(s.Spec.ExternalIPs, ","))
	}
	if s.Spec.ExternalName != "" {
		w.line(0, "External Name:\t%s\n", s.Spec.ExternalName)
	}
	if len(s.Status.LoadBalancer.Ingress) > 0 {
		var in []string
		for _, i := range s.Status.LoadBalancer.Ingress {
			if i.IP != "" {
				in = append(in, i.IP)
			} else {
				in = append(in, i.Hostname)
			}
		}
		w.line(0, "LoadBalancer Ingress:\t%s\n", strings.Join(in, ", "))
	}
	for _, p := range s.Spec.Ports {
		name := p.Name
		if name == "" {
			name = "<unset>"
		}
		w.line(0, "Port:\t%s\t%d/%s\n", name, p.Port, p.Protocol)
		if p.TargetPort.Type == intstr.Int {
			w.line(0, "TargetPort:\t%d/%s\n", p.TargetPort.IntVal, p.Protocol)
		} else {
			w.line(0, "TargetPort:\t%s/%s\n", p.TargetPort.StrVal, p.Protocol)
		}
		if p.NodePort != 0 {
			w.line(0, "NodePort:\t%s\t%d/%s\n", name, p.NodePort, p.Protocol)
		}
		w.line(0, "Endpoints:\t%s\n", sliceEndpoints(rel.EndpointSlices, p.Name))
	}
	w.line(0, "Session Affinity:\t%s\n", s.Spec.SessionAffinity)
	if s.Spec.ExternalTrafficPolicy != "" {
		w.line(0, "External Traffic Policy:\t%s\n", s.Spec.ExternalTrafficPolicy)
	}
	if s.Spec.InternalTrafficPolicy != nil {
		w.line(0, "Internal Traffic Policy:\t%s\n", *s.Spec.InternalTrafficPolicy)
	}
	if s.Spec.HealthCheckNodePort != 0 {
		w.line(0, "HealthCheck NodePort:\t%d\n", s.Spec.HealthCheckNodePort)
	}
}

// sliceEndpoints lists up to three ready ip:port endpoints of the named
// port across slices, as kubectl's formatEndpointSlices does.
func sliceEndpoints(slices []discoveryv1.EndpointSlice, port string) string {
	if len(slices) == 0 {
		return "<none>"
	}
	const max = 3
	var list []string
	count := 0
	for _, s := range slices {
		for _, p := range s.Ports {
			if p.Name == nil || *p.Name != port || p.Port == nil {
				continue
			}
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && !*e.Conditions.Ready {
					continue
				}
				for _, a := range e.Addresses {
					count++
					if len(list) < max {
						list = append(list, fmt.Sprintf("%s:%d", a, *p.Port))
					}
				}
			}
		}
	}
	out := strings.Join(list, ",")
	if count > max {
		out += fmt.Sprintf(" + %d more...", count-max)
	}
	return out
}

func (w *writer) node(n *corev1.Node, rel Related) {
	w.line(0, "Name:\t%s\n", n.Name)
	w.line(0, "Roles:\t%s\n", orNone(strings.Join(printers.NodeRoles(n), ",")))
	w.labels("Labels", n.Labels)
	w.annotations("Annotations", n.Annotations)
	w.line(0, "CreationTimestamp:\t%s\n", n.CreationTimestamp.Time.Format(time.RFC1123Z))
	w.line(0, "Taints:\t")
	if len(n.Spec.Taints) == 0 {
		w.line(0, "<none>\n")
	}
	for i, t := range n.Spec.Taints {
		if i > 0 {
			w.line(0, "\t")
		}
		w.line(0, "%s\n", t.ToString())
	}
	w.line(0, "Unschedulable:\t%v\n", n.Spec.Unschedulable)
	if len(n.Status.Conditions) > 0 {
		w.line(0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n")
		w.line(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
		for _, c := range n.Status.Conditions {
			w.line(1, "%v \t%v \t%s \t%s \t%v \t%v\n", c.Type, c.Status,
				c.LastHeartbeatTime.Time.Format(time.RFC1123Z), c.LastTransitionTime.Time.Format(time.RFC1123Z), c.Reason, c.Message)
		}
	}
	w.line(0, "Addresses:\n")
	for _, a := range n.Status.Addresses {
		w.line(1, "%s:\t%s\n", a.Type, a.Address)
	}
	for _, part := range []struct {
		title string
		list  corev1.ResourceList
	}{{"Capacity", n.Status.Capacity}, {"Allocatable", n.Status.Allocatable}} {
		if len(part.list) == 0 {
			continue
		}
		w.line(0, "%s:\n", part.title)
		names := make([]string, 0, len(part.list))
		for r := range part.list {
			names = append(names, string(r))
		}
		sort.Strings(names)
		for _, r := range names {
			q := part.list[corev1.ResourceName(r)]
			w.line(1, "%s:\t%s\n", r, q.String())
		}
	}
	i := n.Status.NodeInfo
	w.line(0, "System Info:\n")
	w.line(1, "Machine ID:\t%s\n", i.MachineID)
	w.line(1, "System UUID:\t%s\n", i.SystemUUID)
	w.line(1, "Boot ID:\t%s\n", i.BootID)
	w.line(1, "Kernel Version:\t%s\n", i.KernelVersion)
	w.line(1, "OS Image:\t%s\n", i.OSImage)
	w.line(1, "Operating System:\t%s\n", i.OperatingSystem)
	w.line(1, "Architecture:\t%s\n", i.Architecture)
	w.line(1, "Container Runtime Version:\t%s\n", i.ContainerRuntimeVersion)
	w.line(1, "Kubelet Version:\t%s\n", i.KubeletVersion)
	if n.Spec.PodCIDR != "" {
		w.line(0, "PodCIDR:\t%s\n", n.Spec.PodCIDR)
	}
	if len(n.Spec.PodCIDRs) > 0 {
		w.line(0, "PodCIDRs:\t%s\n", strings.Join(n.Spec.PodCIDRs, ","))
	}
	var pods []corev1.Pod
	for _, p := range rel.Pods {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			pods = append(pods, p)
		}
	}
	w.line(0, "Non-terminated Pods:\t(%d in total)\n", len(pods))
	if len(pods) > 0 {
		w.line(1, "Namespace\tName\tAge\n")
		w.line(1, "---------\t----\t---\n")
		for _, p := range pods {
			w.line(1, "%s\t%s\t%s\n", p.Namespace, p.Name, w.age(p.CreationTimestamp))
		}
	}
}

func (w *writer) namespace(n *corev1.Namespace) {
	w.line(0, "Name:\t%s\n", n.Name)
	w.labels("Labels", n.Labels)
	w.annotations("Annotations", n.Annotations)
	w.line(0, "Status:\t%s\n", n.Status.Phase)
	w.line(0, "\n")
	w.line(0, "No resource quota.\n")
	w.line(0, "\n")
	w.line(0, "No LimitRange resource.\n")
}

func (w *writer) configMap(c *corev1.ConfigMap) {
	w.line(0, "Name:\t%s\n", c.Name)
	w.line(0, "Namespace:\t%s\n", c.Namespace)
	w.labels("Labels", c.Labels)
	w.annotations("Annotations", c.Annotations)
	w.line(0, "\nData\n====\n")
	for _, k := range sortedKeys(c.Data) {
		w.line(0, "%s:\n----\n", k)
		w.line(0, "%s\n\n", c.Data[k])
	}
	w.line(0, "\nBinaryData\n====\n")
	keys := make([]string, 0, len(c.BinaryData))
	for k := range c.BinaryData {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w.line(0, "%s: %s bytes\n", k, fmt.Sprint(len(c.BinaryData[k])))
	}
	w.line(0, "\n")
	w.line(0, "Events:\t<none>\n")
}

// generic describes any other kind: its metadata, then its spec and
// status as indented YAML, which keeps every field visible.
func (w *writer) generic(obj runtime.Object) error {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("describe %T: %w", obj, err)
	}
	md, _ := u["metadata"].(map[string]any)
	str := func(k string) string { s, _ := md[k].(string); return s }
	strMap := func(k string) map[string]string {
		out := map[string]string{}
		m, _ := md[k].(map[string]any)
		for k, v := range m {
			out[k] = fmt.Sprint(v)
		}
		return out
	}
	w.line(0, "Name:\t%s\n", str("name"))
	if ns := str("namespace"); ns != "" {
		w.line(0, "Namespace:\t%s\n", ns)
	}
	w.labels("Labels", strMap("labels"))
	w.annotations("Annotations", strMap("annotations"))
	if m, ok := obj.(metav1.Object); ok {
		if c := controller(m); c != "" {
			w.line(0, "Controlled By:\t%s\n", c)
		}
		w.line(0, "CreationTimestamp:\t%s\n", m.GetCreationTimestamp().Time.Format(time.RFC1123Z))
	}
	keys := make([]string, 0, len(u))
	for k := range u {
		switch k {
		case "apiVersion", "kind", "metadata":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b, err := yaml.Marshal(u[k])
		if err != nil {
			return err
		}
		text := strings.TrimRight(string(b), "\n")
		if text == "{}" || text == "" {
			continue
		}
		if _, scalar := u[k].(map[string]any); !scalar {
			if _, list := u[k].([]any); !list {
				w.line(0, "%s:\t%s\n", titleCase(k), text)
				continue
			}
		}
		w.line(0, "%s:\n", titleCase(k))
		for _, l := range strings.Split(text, "\n") {
			// Tabs would be taken as column breaks.
			w.line(1, "%s\n", strings.ReplaceAll(l, "\t", " "))
		}
	}
	return nil
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// PodTemplate renders a pod template as describe shows it, for rollout
// history --revision.
func PodTemplate(t *corev1.PodTemplateSpec) string {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 8, 2, ' ', 0)
	w := &writer{out: tw}
	w.podTemplate(t)
	_ = tw.Flush()
	return buf.String()
}

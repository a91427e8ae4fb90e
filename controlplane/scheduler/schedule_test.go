package scheduler

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestSchedule(t *testing.T) {
	tests := []struct {
		name     string
		nodes    []*corev1.Node
		bound    []*corev1.Pod
		services []*corev1.Service
		pod      *corev1.Pod
		tieBreak uint64
		// want is the chosen node; wantErr the FitError's message.
		want, wantErr string
	}{
		// Filters, each on its own.
		{
			name:  "ready node over not-ready ones",
			nodes: []*corev1.Node{node("n1", "4", "4Gi", 110, withReady(corev1.ConditionFalse)), node("n2", "4", "4Gi", 110), node("n3", "4", "4Gi", 110, withReady(corev1.ConditionUnknown))},
			pod:   pod("p", "100m", "100Mi"),
			want:  "n2",
		},
		{
			name: "a node that never reported is not ready",
			nodes: []*corev1.Node{node("n1", "4", "4Gi", 110, func(n *corev1.Node) { n.Status.Conditions = nil }),
				node("n2", "4", "4Gi", 110, withReady(corev1.ConditionFalse))},
			pod:     pod("p", "100m", "100Mi"),
			wantErr: "0/2 nodes are available: 2 node(s) were not ready.",
		},
		{
			name:  "cordoned node is skipped",
			nodes: []*corev1.Node{node("n1", "8", "8Gi", 110, cordoned), node("n2", "4", "4Gi", 110)},
			pod:   pod("p", "100m", "100Mi"),
			want:  "n2",
		},
		{
			name:    "only cordoned nodes",
			nodes:   []*corev1.Node{node("n1", "4", "4Gi", 110, cordoned)},
			pod:     pod("p", "100m", "100Mi"),
			wantErr: "0/1 nodes are available: 1 node(s) were unschedulable.",
		},
		{
			name:  "a pod tolerating the unschedulable taint may use a cordoned node",
			nodes: []*corev1.Node{node("n1", "4", "4Gi", 110, cordoned)},
			pod: pod("p", "100m", "100Mi", withToleration(corev1.Toleration{
				Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})),
			want: "n1",
		},
		{
			name:    "NoSchedule taint without toleration",
			nodes:   []*corev1.Node{node("n1", "4", "4Gi", 110, withTaint("dedicated", "gpu", corev1.TaintEffectNoSchedule))},
			pod:     pod("p", "100m", "100Mi"),
			wantErr: "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}.",
		},
		{
			name:    "NoExecute taint without toleration",
			nodes:   []*corev1.Node{node("n1", "4", "4Gi", 110, withTaint("node.kubernetes.io/not-ready", "", corev1.TaintEffectNoExecute))},
			pod:     pod("p", "100m", "100Mi"),
			wantErr: "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }.",
		},
		{
			name:  "Equal toleration",
			nodes: []*corev1.Node{node("n1", "4", "4Gi", 110, withTaint("dedicated", "gpu", corev1.TaintEffectNoSchedule))},
			pod: pod("p", "100m", "100Mi", withToleration(corev1.Toleration{
				Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule})),
			want: "n1",
		},
		{
			name:  "Exists toleration without key tolerates everything",
			nodes: []*corev1.Node{node("n1", "4", "4Gi", 110, withTaint("a", "1", corev1.TaintEffectNoSchedule), withTaint("b", "2", corev1.TaintEffectNoExecute))},
			pod:   pod("p", "100m", "100Mi", withToleration(corev1.Toleration{Operator: corev1.TolerationOpExists})),
			want:  "n1",
		},
		{
			name:  "toleration of another value or effect does not tolerate",
			nodes: []*corev1.Node{node("n1", "4", "4Gi", 110, withTaint("dedicated", "gpu", corev1.TaintEffectNoSchedule))},
			pod: pod("p", "100m", "100Mi",
				withToleration(corev1.Toleration{Key: "dedicated", Value: "cpu", Effect: corev1.TaintEffectNoSchedule}),
				withToleration(corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute})),
			wantErr: "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}.",
		},
		{
			name:  "PreferNoSchedule does not filter",
			nodes: []*corev1.Node{node("n1", "4", "4Gi", 110, withTaint("spot", "true", corev1.TaintEffectPreferNoSchedule))},
			pod:   pod("p", "100m", "100Mi"),
			want:  "n1",
		},
		{
			name:  "nodeSelector picks the labelled node",
			nodes: []*corev1.Node{node("n1", "8", "8Gi", 110), node("n2", "4", "4Gi", 110, withLabel("disktype", "ssd")), node("n3", "8", "8Gi", 110)},
			pod:   pod("p", "100m", "100Mi", withSelector("disktype", "ssd")),
			want:  "n2",
		},
		{
			name:    "nodeSelector matching no node",
			nodes:   []*corev1.Node{node("n1", "4", "4Gi", 110), node("n2", "4", "4Gi", 110, withLabel("disktype", "hdd"))},
			pod:     pod("p", "100m", "100Mi", withSelector("disktype", "ssd")),
			wantErr: "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.",
		},
		{
			name:  "required affinity In",
			nodes: []*corev1.Node{node("n1", "8", "8Gi", 110, withLabel("zone", "a")), node("n2", "4", "4Gi", 110, withLabel("zone", "b"))},
			pod:   pod("p", "100m", "100Mi", withRequired(expr("zone", corev1.NodeSelectorOpIn, "b", "c"))),
			want:  "n2",
		},
		{
			name:  "required affinity NotIn (a node without the label matches)",
			nodes: []*corev1.Node{node("n1", "8", "8Gi", 110, withLabel("zone", "a")), node("n2", "4", "4Gi", 110)},
			pod:   pod("p", "100m", "100Mi", withRequired(expr("zone", corev1.NodeSelectorOpNotIn, "a"))),
			want:  "n2",
		},
		{
			name:  "required affinity Exists",
			nodes: []*corev1.Node{node("n1", "8", "8Gi", 110), node("n2", "4", "4Gi", 110, withLabel("gpu", ""))},
			pod:   pod("p", "100m", "100Mi", withRequired(expr("gpu", corev1.NodeSelectorOpExists))),
			want:  "n2",
		},
		{
			name:  "required affinity DoesNotExist",
			nodes: []*corev1.Node{node("n1", "8", "8Gi", 110, withLabel("gpu", "")), node("n2", "4", "4Gi", 110)},
			pod:   pod("p", "100m", "100Mi", withRequired(expr("gpu", corev1.NodeSelectorOpDoesNotExist))),
			want:  "n2",
		},
		{
			name: "required affinity Gt",
			nodes: []*corev1.Node{node("n1", "8", "8Gi", 110, withLabel("cores", "8")), node("n2", "4", "4Gi", 110, withLabel("cores", "32")),
				node("n3", "8", "8Gi", 110, withLabel("cores", "many"))},
			pod:  pod("p", "100m", "100Mi", withRequired(expr("cores", corev1.NodeSelectorOpGt, "16"))),
			want: "n2",
		},
		{
			name:  "required affinity Lt",
			nodes: []*corev1.Node{node("n1", "8", "8Gi", 110, withLabel("gen", "5")), node("n2", "4", "4Gi", 110, withLabel("gen", "2"))},
			pod:   pod("p", "100m", "100Mi", withRequired(expr("gen", corev1.NodeSelectorOpLt, "3"))),
			want:  "n2",
		},
		{
			name: "required affinity: terms are ORed, expressions ANDed",
			nodes: []*corev1.Node{
				node("n1", "8", "8Gi", 110, withLabel("zone", "a")),                           // half of term 1
				node("n2", "4", "4Gi", 110, withLabel("zone", "a"), withLabel("ssd", "true")), // all of term 1
				node("n3", "8", "8Gi", 110, withLabel("zone", "b")),                           // nothing
			},
			pod: pod("p", "100m", "100Mi", withRequired(
				corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
					{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}},
					{Key: "ssd", Operator: corev1.NodeSelectorOpExists},
				}},
				expr("zone", corev1.NodeSelectorOpIn, "c"),
			)),
			want: "n2",
		},
		{
			name:  "required affinity matchFields metadata.name",
			nodes: []*corev1.Node{node("n1", "8", "8Gi", 110), node("n2", "4", "4Gi", 110)},
			pod: pod("p", "100m", "100Mi", withRequired(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{
				{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n2"}}}})),
			want: "n2",
		},
		{
			name:    "an empty affinity term matches no node",
			nodes:   []*corev1.Node{node("n1", "8", "8Gi", 110)},
			pod:     pod("p", "100m", "100Mi", withRequired(corev1.NodeSelectorTerm{})),
			wantErr: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.",
		},
		{
			name:    "nodeSelector and affinity must both match",
			nodes:   []*corev1.Node{node("n1", "8", "8Gi", 110, withLabel("disktype", "ssd")), node("n2", "4", "4Gi", 110, withLabel("zone", "a"))},
			pod:     pod("p", "100m", "100Mi", withSelector("disktype", "ssd"), withRequired(expr("zone", corev1.NodeSelectorOpIn, "a"))),
			wantErr: "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.",
		},
		{
			name:  "cpu left after bound pods",
			nodes: []*corev1.Node{node("n1", "2", "8Gi", 110), node("n2", "2", "8Gi", 110)},
			bound: []*corev1.Pod{pod("a", "1500m", "1Gi", on("n1")), pod("b", "1", "1Gi", on("n2"))},
			pod:   pod("p", "800m", "100Mi"),
			want:  "n2",
		},
		{
			name:    "cpu nowhere",
			nodes:   []*corev1.Node{node("n1", "2", "8Gi", 110), node("n2", "2", "8Gi", 110)},
			bound:   []*corev1.Pod{pod("a", "1500m", "1Gi", on("n1")), pod("b", "1500m", "1Gi", on("n2"))},
			pod:     pod("p", "800m", "100Mi"),
			wantErr: "0/2 nodes are available: 2 Insufficient cpu.",
		},
		{
			name:    "memory and cpu both short count under both reasons",
			nodes:   []*corev1.Node{node("n1", "1", "1Gi", 110)},
			pod:     pod("p", "2", "2Gi"),
			wantErr: "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.",
		},
		{
			name:    "pod count",
			nodes:   []*corev1.Node{node("n1", "4", "4Gi", 2)},
			bound:   []*corev1.Pod{pod("a", "", "", on("n1")), pod("b", "", "", on("n1"))},
			pod:     pod("p", "", ""),
			wantErr: "0/1 nodes are available: 1 Too many pods.",
		},
		{
			name:  "finished pods hold nothing",
			nodes: []*corev1.Node{node("n1", "1", "4Gi", 1)},
			bound: []*corev1.Pod{pod("done", "1", "1Gi", on("n1"), func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })},
			pod:   pod("p", "1", "1Gi"),
			want:  "n1",
		},
		{
			name:    "extended resource",
			nodes:   []*corev1.Node{node("n1", "4", "4Gi", 110), node("n2", "4", "4Gi", 110, withAllocatable("example.com/gpu", "1"))},
			bound:   []*corev1.Pod{pod("a", "", "", on("n2"), withRequest("example.com/gpu", "1"))},
			pod:     pod("p", "100m", "100Mi", withRequest("example.com/gpu", "1")),
			wantErr: "0/2 nodes are available: 2 Insufficient example.com/gpu.",
		},
		{
			name:    "ephemeral storage",
			nodes:   []*corev1.Node{node("n1", "4", "4Gi", 110, withAllocatable(corev1.ResourceEphemeralStorage, "10Gi"))},
			pod:     pod("p", "100m", "100Mi", withRequest(corev1.ResourceEphemeralStorage, "20Gi")),
			wantErr: "0/1 nodes are available: 1 Insufficient ephemeral-storage.",
		},
		{
			name:  "an init container larger than the app containers decides",
			nodes: []*corev1.Node{node("n1", "1", "4Gi", 110)},
			pod: pod("p", "100m", "100Mi", func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{{Name: "init", Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m")}}}}
			}),
			wantErr: "0/1 nodes are available: 1 Insufficient cpu.",
		},
		{
			name:  "sidecars add to the app containers",
			nodes: []*corev1.Node{node("n1", "1", "4Gi", 110)},
			pod: pod("p", "600m", "100Mi", func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{{Name: "proxy", RestartPolicy: new(corev1.ContainerRestartPolicyAlways),
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("600m")}}}}
			}),
			wantErr: "0/1 nodes are available: 1 Insufficient cpu.",
		},
		{
			name:  "pod overhead counts",
			nodes: []*corev1.Node{node("n1", "1", "4Gi", 110)},
			pod: pod("p", "900m", "100Mi", func(p *corev1.Pod) {
				p.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m")}
			}),
			wantErr: "0/1 nodes are available: 1 Insufficient cpu.",
		},
		{
			name:  "a pod asking for nothing fits an overcommitted node",
			nodes: []*corev1.Node{node("n1", "1", "1Gi", 110)},
			bound: []*corev1.Pod{pod("static", "2", "2Gi", on("n1"))},
			pod:   pod("p", "", ""),
			want:  "n1",
		},
		{
			name:  "host port in use",
			nodes: []*corev1.Node{node("n1", "8", "8Gi", 110), node("n2", "4", "4Gi", 110)},
			bound: []*corev1.Pod{pod("a", "", "", on("n1"), withHostPort(corev1.ProtocolTCP, "", 8080))},
			pod:   pod("p", "100m", "100Mi", withHostPort(corev1.ProtocolTCP, "", 8080)),
			want:  "n2",
		},
		{
			name:    "host port in use everywhere (wildcard against a single address)",
			nodes:   []*corev1.Node{node("n1", "8", "8Gi", 110)},
			bound:   []*corev1.Pod{pod("a", "", "", on("n1"), withHostPort(corev1.ProtocolTCP, "10.0.0.1", 8080))},
			pod:     pod("p", "100m", "100Mi", withHostPort("", "0.0.0.0", 8080)),
			wantErr: "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.",
		},
		{
			name:  "same host port on another protocol or address is free",
			nodes: []*corev1.Node{node("n1", "8", "8Gi", 110)},
			bound: []*corev1.Pod{pod("a", "", "", on("n1"), withHostPort(corev1.ProtocolUDP, "", 53), withHostPort(corev1.ProtocolTCP, "10.0.0.1", 80))},
			pod:   pod("p", "100m", "100Mi", withHostPort(corev1.ProtocolTCP, "", 53), withHostPort(corev1.ProtocolTCP, "10.0.0.2", 80)),
			want:  "n1",
		},
		{
			name:    "no nodes",
			pod:     pod("p", "100m", "100Mi"),
			wantErr: "no nodes available to schedule pods",
		},
		// Filters combined: a node counts under its first failing filter.
		{
			name: "the issue's message",
			nodes: []*corev1.Node{
				node("n1", "8", "8Gi", 110), // no label
				node("n2", "1", "8Gi", 110, withLabel("disktype", "ssd")),
				node("n3", "1", "8Gi", 110, withLabel("disktype", "ssd")),
			},
			pod:     pod("p", "2", "100Mi", withSelector("disktype", "ssd")),
			wantErr: "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu.",
		},
		{
			name: "every filter at once; one node passes",
			nodes: []*corev1.Node{
				node("n1", "8", "8Gi", 110, withReady(corev1.ConditionFalse)),
				node("n2", "8", "8Gi", 110, cordoned),
				node("n3", "8", "8Gi", 110, withTaint("dedicated", "db", corev1.TaintEffectNoSchedule)),
				node("n4", "8", "8Gi", 110, withLabel("zone", "b")),
				node("n5", "8", "8Gi", 110, withLabel("zone", "a")),
				node("n6", "1", "8Gi", 110, withLabel("zone", "a")),
				node("n7", "8", "8Gi", 110, withLabel("zone", "a")),
			},
			bound:   []*corev1.Pod{pod("web", "", "", on("n5"), withHostPort(corev1.ProtocolTCP, "", 443))},
			pod:     pod("p", "2", "1Gi", withRequired(expr("zone", corev1.NodeSelectorOpIn, "a")), withHostPort(corev1.ProtocolTCP, "", 443)),
			want:    "n7",
			wantErr: "",
		},
		{
			name: "reasons sort as strings, as kube-scheduler sorts them",
			nodes: func() []*corev1.Node {
				var ns []*corev1.Node
				for i := range 10 {
					ns = append(ns, node(fmt.Sprintf("small-%d", i), "1", "8Gi", 110, withLabel("disktype", "ssd")))
				}
				return append(ns, node("hdd-1", "8", "8Gi", 110), node("hdd-2", "8", "8Gi", 110))
			}(),
			pod:     pod("p", "2", "100Mi", withSelector("disktype", "ssd")),
			wantErr: "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector.",
		},
		// Scores, each on its own: every node passes the filters.
		{
			name:  "least requested: the emptier node",
			nodes: []*corev1.Node{node("n1", "4", "4Gi", 110), node("n2", "4", "4Gi", 110)},
			bound: []*corev1.Pod{pod("a", "2", "1Gi", on("n1"))},
			pod:   pod("p", "100m", "100Mi"),
			want:  "n2",
		},
		{
			name:  "least requested counts pods without requests at the defaults",
			nodes: []*corev1.Node{node("n1", "4", "4Gi", 110), node("n2", "4", "4Gi", 110)},
			bound: []*corev1.Pod{pod("a", "", "", on("n1")), pod("b", "", "", on("n1"))},
			pod:   pod("p", "", ""),
			want:  "n2",
		},
		{
			// Both nodes score 50 on least requested; n1 would be 75%
			// cpu and 25% memory used, n2 50% and 50%.
			name:  "balanced allocation: the node whose cpu and memory stay even",
			nodes: []*corev1.Node{node("n1", "4", "4Gi", 110), node("n2", "4", "4Gi", 110)},
			bound: []*corev1.Pod{pod("a", "2", "0", on("n1")), pod("b", "1", "1Gi", on("n2"))},
			pod:   pod("p", "1", "1Gi"),
			want:  "n2",
		},
		{
			name:  "preferred affinity",
			nodes: []*corev1.Node{node("n1", "4", "4Gi", 110, withLabel("zone", "a")), node("n2", "4", "4Gi", 110, withLabel("zone", "b"))},
			pod:   pod("p", "100m", "100Mi", withPreferred(10, expr("zone", corev1.NodeSelectorOpIn, "b"))),
			want:  "n2",
		},
		{
			name: "preferred affinity: heavier terms win",
			nodes: []*corev1.Node{node("n1", "4", "4Gi", 110, withLabel("zone", "a"), withLabel("ssd", "")),
				node("n2", "4", "4Gi", 110, withLabel("zone", "b"))},
			pod: pod("p", "100m", "100Mi", withPreferred(10, expr("zone", corev1.NodeSelectorOpIn, "a")),
				withPreferred(50, expr("zone", corev1.NodeSelectorOpIn, "b")),
				withPreferred(20, expr("ssd", corev1.NodeSelectorOpExists))),
			want: "n2",
		},
		{
			name:  "PreferNoSchedule taint",
			nodes: []*corev1.Node{node("n1", "4", "4Gi", 110, withTaint("spot", "true", corev1.TaintEffectPreferNoSchedule)), node("n2", "4", "4Gi", 110)},
			pod:   pod("p", "100m", "100Mi"),
			want:  "n2",
		},
		{
			name:  "PreferNoSchedule taint tolerated: a tie, broken by order",
			nodes: []*corev1.Node{node("n1", "4", "4Gi", 110, withTaint("spot", "true", corev1.TaintEffectPreferNoSchedule)), node("n2", "4", "4Gi", 110)},
			pod: pod("p", "100m", "100Mi", withToleration(corev1.Toleration{
				Key: "spot", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectPreferNoSchedule})),
			want: "n1",
		},
		{
			name:  "spread: away from pods of the same ReplicaSet",
			nodes: []*corev1.Node{node("n1", "4", "4Gi", 110), node("n2", "4", "4Gi", 110)},
			bound: []*corev1.Pod{pod("web-1", "100m", "100Mi", on("n1"), ownedBy("ReplicaSet", "web", "rs-uid")),
				pod("other", "100m", "100Mi", on("n2"), ownedBy("ReplicaSet", "other", "rs-other"))},
			pod:  pod("web-2", "100m", "100Mi", ownedBy("ReplicaSet", "web", "rs-uid")),
			want: "n2",
		},
		{
			name:  "spread: a pod of another owner sees a tie",
			nodes: []*corev1.Node{node("n1", "4", "4Gi", 110), node("n2", "4", "4Gi", 110)},
			bound: []*corev1.Pod{pod("web-1", "100m", "100Mi", on("n1"), ownedBy("ReplicaSet", "web", "rs-uid")),
				pod("other", "100m", "100Mi", on("n2"), ownedBy("ReplicaSet", "other", "rs-other"))},
			pod:  pod("job-1", "100m", "100Mi", ownedBy("Job", "job", "job-uid")),
			want: "n1",
		},
		{
			name:  "spread: away from pods of the same Service",
			nodes: []*corev1.Node{node("n1", "4", "4Gi", 110), node("n2", "4", "4Gi", 110)},
			bound: []*corev1.Pod{pod("web-a", "100m", "100Mi", on("n1"), withPodLabel("app", "web")),
				pod("db", "100m", "100Mi", on("n2"), withPodLabel("app", "db"))},
			services: []*corev1.Service{service("web", map[string]string{"app": "web"})},
			pod:      pod("web-b", "100m", "100Mi", withPodLabel("app", "web")),
			want:     "n2",
		},
		{
			name:  "equal nodes: tie-break 0 takes the first",
			nodes: []*corev1.Node{node("n1", "4", "4Gi", 110), node("n2", "4", "4Gi", 110), node("n3", "4", "4Gi", 110)},
			pod:   pod("p", "100m", "100Mi"),
			want:  "n1",
		},
		{
			name:     "equal nodes: tie-break rotates",
			nodes:    []*corev1.Node{node("n1", "4", "4Gi", 110), node("n2", "4", "4Gi", 110), node("n3", "4", "4Gi", 110)},
			pod:      pod("p", "100m", "100Mi"),
			tieBreak: 4,
			want:     "n2",
		},
		// Scores combined.
		{
			// n1 is emptier, but the pod prefers n2's zone (weight 2) and
			// n2 holds none of its ReplicaSet while n1 does (weight 2).
			name: "affinity and spread outweigh load",
			nodes: []*corev1.Node{node("n1", "8", "8Gi", 110, withLabel("zone", "a")),
				node("n2", "8", "8Gi", 110, withLabel("zone", "b"))},
			bound: []*corev1.Pod{pod("web-1", "100m", "100Mi", on("n1"), ownedBy("ReplicaSet", "web", "rs-uid")),
				pod("big", "4", "4Gi", on("n2"))},
			pod: pod("web-2", "100m", "100Mi", ownedBy("ReplicaSet", "web", "rs-uid"),
				withPreferred(1, expr("zone", corev1.NodeSelectorOpIn, "b"))),
			want: "n2",
		},
		{
			// The PreferNoSchedule taint (weight 3) outweighs the emptier
			// node's load advantage.
			name: "taint score outweighs load",
			nodes: []*corev1.Node{node("n1", "8", "8Gi", 110, withTaint("spot", "true", corev1.TaintEffectPreferNoSchedule)),
				node("n2", "8", "8Gi", 110)},
			bound: []*corev1.Pod{pod("big", "6", "6Gi", on("n2"))},
			pod:   pod("p", "100m", "100Mi"),
			want:  "n2",
		},
	}
	if len(tests) == 0 {
		t.Fatal("no cases")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSnapshot(tc.nodes, tc.bound, tc.services)
			s.TieBreak = tc.tieBreak
			got, err := Schedule(s, tc.pod)
			if tc.wantErr != "" {
				var fe *FitError
				if !errors.As(err, &fe) {
					t.Fatalf("Schedule = %q, %v; want FitError %q", got, err, tc.wantErr)
				}
				if err.Error() != tc.wantErr {
					t.Fatalf("message:\n got %s\nwant %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Schedule = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestScheduleAssignedPod(t *testing.T) {
	s := NewSnapshot([]*corev1.Node{node("n1", "4", "4Gi", 110)}, nil, nil)
	if _, err := Schedule(s, pod("p", "1", "1Gi", on("n1"))); !errors.Is(err, ErrAssigned) {
		t.Fatalf("Schedule of a bound pod: %v, want ErrAssigned", err)
	}
}

// TestScheduleDoesNotChangeSnapshot: the decision is a pure read.
func TestScheduleDoesNotChangeSnapshot(t *testing.T) {
	nodes := []*corev1.Node{node("n1", "4", "4Gi", 110), node("n2", "4", "4Gi", 110)}
	s := NewSnapshot(nodes, []*corev1.Pod{pod("a", "1", "1Gi", on("n1"))}, nil)
	before := fmt.Sprintf("%+v %+v", *s.Nodes[0], *s.Nodes[1])
	for range 3 {
		if _, err := Schedule(s, pod("p", "1", "1Gi")); err != nil {
			t.Fatal(err)
		}
	}
	if after := fmt.Sprintf("%+v %+v", *s.Nodes[0], *s.Nodes[1]); after != before {
		t.Fatalf("snapshot changed:\n%s", cmp.Diff(before, after))
	}
}

// place schedules pods one after another, binding each in the snapshot
// it will next decide on (as the loop's assumed pods do), and returns
// how many landed on each node.
func place(t *testing.T, nodes []*corev1.Node, bound []*corev1.Pod, pods ...*corev1.Pod) ([]*corev1.Pod, map[string]int) {
	t.Helper()
	counts := map[string]int{}
	for i, p := range pods {
		s := NewSnapshot(nodes, bound, nil)
		s.TieBreak = uint64(i)
		got, err := Schedule(s, p)
		if err != nil {
			t.Fatalf("pod %s: %v", p.Name, err)
		}
		p = p.DeepCopy()
		p.Spec.NodeName = got
		bound = append(bound, p)
		counts[got]++
	}
	return bound, counts
}

// TestNodeSelectorFlow is the seed's flow: label a node disktype=ssd and
// pods that ask for it land only there; remove the label and the pods
// there stay (the scheduler never moves a bound pod), new pods without
// the selector go anywhere, and new pods with it fit nowhere.
func TestNodeSelectorFlow(t *testing.T) {
	nodes := []*corev1.Node{node("n1", "4", "8Gi", 110), node("n2", "4", "8Gi", 110), node("n3", "4", "8Gi", 110)}
	nodes[1] = nodes[1].DeepCopy()
	nodes[1].Labels["disktype"] = "ssd"

	var ssd []*corev1.Pod
	for i := range 6 {
		ssd = append(ssd, pod(fmt.Sprintf("ssd-%d", i), "200m", "256Mi", withSelector("disktype", "ssd")))
	}
	bound, counts := place(t, nodes, nil, ssd...)
	if diff := cmp.Diff(map[string]int{"n2": 6}, counts); diff != "" {
		t.Fatalf("with the label, selector pods land (-want +got):\n%s", diff)
	}

	nodes[1] = nodes[1].DeepCopy()
	delete(nodes[1].Labels, "disktype")
	s := NewSnapshot(nodes, bound, nil)
	if got := s.Nodes[1].pods; got != 6 {
		t.Fatalf("after unlabelling, n2 holds %d pods, want the 6 bound ones", got)
	}
	var plain []*corev1.Pod
	for i := range 6 {
		plain = append(plain, pod(fmt.Sprintf("plain-%d", i), "200m", "256Mi"))
	}
	_, counts = place(t, nodes, bound, plain...)
	// n2 is the fullest, so least requested sends new pods elsewhere.
	if diff := cmp.Diff(map[string]int{"n1": 3, "n3": 3}, counts); diff != "" {
		t.Fatalf("without the label, new pods land (-want +got):\n%s", diff)
	}
	_, err := Schedule(s, pod("ssd-late", "200m", "256Mi", withSelector("disktype", "ssd")))
	if want := "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."; err == nil || err.Error() != want {
		t.Fatalf("selector pod after unlabelling: %v, want %q", err, want)
	}
}

// TestSpreadReplicaSet: the pods of one ReplicaSet spread evenly over
// equal nodes, and an unrelated heavy pod does not undo it.
func TestSpreadReplicaSet(t *testing.T) {
	nodes := []*corev1.Node{node("n1", "8", "16Gi", 110), node("n2", "8", "16Gi", 110), node("n3", "8", "16Gi", 110)}
	var pods []*corev1.Pod
	for i := range 9 {
		pods = append(pods, pod(fmt.Sprintf("web-%d", i), "100m", "128Mi", ownedBy("ReplicaSet", "web", "rs-web")))
	}
	_, counts := place(t, nodes, nil, pods...)
	if diff := cmp.Diff(map[string]int{"n1": 3, "n2": 3, "n3": 3}, counts); diff != "" {
		t.Fatalf("spread (-want +got):\n%s", diff)
	}
}

// TestRequestsRespected: many pods over uneven nodes never overcommit
// any of them, and the last ones that fit nowhere say why.
func TestRequestsRespected(t *testing.T) {
	nodes := []*corev1.Node{node("n1", "1", "2Gi", 110), node("n2", "2", "2Gi", 110), node("n3", "4", "2Gi", 5)}
	var bound []*corev1.Pod
	var fails []string
	for i := range 40 {
		s := NewSnapshot(nodes, bound, nil)
		s.TieBreak = uint64(i)
		p := pod(fmt.Sprintf("p%d", i), "250m", "64Mi")
		got, err := Schedule(s, p)
		if err != nil {
			fails = append(fails, err.Error())
			continue
		}
		p.Spec.NodeName = got
		bound = append(bound, p)
	}
	// n1 holds 4, n2 8, n3 5 (its pod limit): 17 placed, 23 refused.
	s := NewSnapshot(nodes, bound, nil)
	for _, n := range s.Nodes {
		if n.requested.milliCPU > n.allocatable.milliCPU || n.pods > n.allowedPods {
			t.Errorf("node %s overcommitted: %dm of %dm cpu, %d of %d pods", n.Name(),
				n.requested.milliCPU, n.allocatable.milliCPU, n.pods, n.allowedPods)
		}
	}
	if len(bound) != 17 {
		t.Errorf("placed %d pods, want 17", len(bound))
	}
	want := "0/3 nodes are available: 1 Too many pods, 2 Insufficient cpu."
	if len(fails) == 0 || fails[0] != want {
		t.Errorf("first refusal: %v, want %q", fails, want)
	}
}

// BenchmarkSchedule is one decision over 3 and 100 nodes holding 1,000
// pods between them: the per-pod work of the loop, without the API.
func BenchmarkSchedule(b *testing.B) {
	for _, count := range []int{3, 100} {
		b.Run(fmt.Sprintf("nodes=%d", count), func(b *testing.B) {
			var nodes []*corev1.Node
			for i := range count {
				nodes = append(nodes, node(fmt.Sprintf("n%03d", i), "1000", "4Ti", 100000))
			}
			var bound []*corev1.Pod
			for i := range 1000 {
				bound = append(bound, pod(fmt.Sprintf("b%d", i), "10m", "16Mi", on(nodes[i%count].Name),
					ownedBy("ReplicaSet", "web", "rs-web")))
			}
			s := NewSnapshot(nodes, bound, []*corev1.Service{service("web", map[string]string{"app": "web"})})
			p := pod("p", "10m", "16Mi", ownedBy("ReplicaSet", "web", "rs-web"), withPodLabel("app", "web"))
			for b.Loop() {
				if _, err := Schedule(s, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package scheduler_test

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weir.dev/weir/controlplane/scheduler"
)

func ExampleSchedule() {
	ready := []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	alloc := func(cpu string) corev1.ResourceList {
		return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourcePods: resource.MustParse("110")}
	}
	nodes := []*corev1.Node{
		{ObjectMeta: metav1.ObjectMeta{Name: "hdd"}, Status: corev1.NodeStatus{Allocatable: alloc("8"), Conditions: ready}},
		{ObjectMeta: metav1.ObjectMeta{Name: "ssd-small", Labels: map[string]string{"disktype": "ssd"}},
			Status: corev1.NodeStatus{Allocatable: alloc("1"), Conditions: ready}},
		{ObjectMeta: metav1.ObjectMeta{Name: "ssd-big", Labels: map[string]string{"disktype": "ssd"}},
			Status: corev1.NodeStatus{Allocatable: alloc("4"), Conditions: ready}},
	}
	pod := func(cpu string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
			Spec: corev1.PodSpec{
				NodeSelector: map[string]string{"disktype": "ssd"},
				Containers: []corev1.Container{{Name: "db", Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}},
			},
		}
	}
	snap := scheduler.NewSnapshot(nodes, nil, nil)
	for _, cpu := range []string{"2", "6"} {
		node, err := scheduler.Schedule(snap, pod(cpu))
		if err != nil {
			fmt.Println("pending:", err)
			continue
		}
		fmt.Println("bound to", node)
	}
	// Output:
	// bound to ssd-big
	// pending: 0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu.
}

func ExamplePlanDrain() {
	controller := []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "u", Controller: new(true)}}
	pods := []corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-1", OwnerReferences: controller}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "debug"}},
	}
	plan := scheduler.PlanDrain(pods, nil, scheduler.DrainOptions{})
	fmt.Println(plan.Err())
	plan = scheduler.PlanDrain(pods, nil, scheduler.DrainOptions{Force: true})
	for _, p := range plan.Evict() {
		fmt.Println("evict", p.Namespace+"/"+p.Name)
	}
	fmt.Println("Warning:", plan.Warnings())
	// Output:
	// cannot delete Pods that declare no controller (use --force to override): default/debug
	// evict default/web-1
	// evict default/debug
	// Warning: deleting Pods that declare no controller: default/debug
}

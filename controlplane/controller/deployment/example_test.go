package deployment_test

import (
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weir.dev/weir/controlplane/controller/deployment"
)

// rollout history and rollout undo over the ReplicaSets a Deployment
// controls, as `weir rollout` does after listing them.
func Example() {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "d1",
		Annotations: map[string]string{deployment.RevisionAnnotation: "2"}}}
	d.Spec.Template = template("nginx:1.27")
	owner := *metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))
	rs := func(name, rev, cause, image string) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: []metav1.OwnerReference{owner},
				Annotations: map[string]string{deployment.RevisionAnnotation: rev, deployment.ChangeCauseAnnotation: cause}},
			Spec: appsv1.ReplicaSetSpec{Template: template(image)},
		}
	}
	rss := []*appsv1.ReplicaSet{
		rs("web-7b9c5d8f6d", "2", "kubectl set image deployment/web nginx=nginx:1.27", "nginx:1.27"),
		rs("web-5d4f8c7b9a", "1", "kubectl apply --filename=web.yaml", "nginx:1.26"),
	}

	for _, r := range deployment.History(rss) {
		fmt.Println(r.Number, r.ChangeCause)
	}
	undone, err := deployment.RollbackTo(d, rss, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(undone.Spec.Template.Spec.Containers[0].Image)
	_, err = deployment.RollbackTo(undone, rss, 1)
	fmt.Println(errors.Is(err, deployment.ErrSkipped))
	// Output:
	// 1 kubectl apply --filename=web.yaml
	// 2 kubectl set image deployment/web nginx=nginx:1.27
	// nginx:1.26
	// true
}

func template(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: image}}},
	}
}

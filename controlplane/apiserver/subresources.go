package apiserver

import (
	"fmt"
	"net/http"
	"reflect"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"weir.dev/weir/controlplane/resources"
)

// replicasField reaches spec.replicas and the selector of a scalable kind.
func scaleOf(obj runtime.Object) (*autoscalingv1.Scale, error) {
	m, _ := meta.Accessor(obj)
	sc := &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{Kind: "Scale", APIVersion: "autoscaling/v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
			ResourceVersion: m.GetResourceVersion(), CreationTimestamp: m.GetCreationTimestamp(),
		},
	}
	sp, st := structField(obj, "Spec"), structField(obj, "Status")
	if r := sp.FieldByName("Replicas"); r.IsValid() && !r.IsNil() {
		sc.Spec.Replicas = int32(r.Elem().Int())
	}
	if r := st.FieldByName("Replicas"); r.IsValid() {
		sc.Status.Replicas = int32(r.Int())
	}
	if sel := sp.FieldByName("Selector"); sel.IsValid() && !sel.IsNil() {
		ls, err := metav1.LabelSelectorAsSelector(sel.Interface().(*metav1.LabelSelector))
		if err == nil {
			sc.Status.Selector = ls.String()
		}
	}
	return sc, nil
}

func (s *Server) handleScale(w http.ResponseWriter, r *http.Request, ri requestInfo) {
	ctx := r.Context()
	switch ri.Verb {
	case "get":
		obj, err := s.get(ctx, ri)
		if err != nil {
			writeError(w, err)
			return
		}
		sc, _ := scaleOf(obj)
		writeObject(w, r, http.StatusOK, sc)
	case "update", "patch":
		body, err := readBody(r)
		if err != nil {
			writeError(w, err)
			return
		}
		pt := types.PatchType(r.Header.Get("Content-Type"))
		main := ri
		main.Subresource = ""
		out, err := s.readModifyWrite(ctx, main, isDryRun(r.URL.Query()), func(cur runtime.Object) (runtime.Object, error) {
			sc, _ := scaleOf(cur)
			var want autoscalingv1.Scale
			if ri.Verb == "patch" {
				scRes := &resources.Resource{Group: "autoscaling", Version: "v1", Kind: "Scale", Plural: "scale"}
				p, err := applyPatch(scRes, sc, patchTypeOf(pt), body, false)
				if err != nil {
					return nil, err
				}
				want = *p.(*autoscalingv1.Scale)
			} else if err := decodeInto(r, body, &want); err != nil {
				return nil, err
			}
			if want.ResourceVersion != "" && want.ResourceVersion != sc.ResourceVersion {
				return nil, conflict(ri.Res, ri.Name)
			}
			if want.Spec.Replicas < 0 {
				return nil, apierrors.NewInvalid(schemaGK("autoscaling", "Scale"), ri.Name, invalidReplicas(want.Spec.Replicas))
			}
			n := want.Spec.Replicas
			structField(cur, "Spec").FieldByName("Replicas").Set(reflectPtr(n))
			return cur, nil
		})
		if err != nil {
			writeError(w, err)
			return
		}
		sc, _ := scaleOf(out)
		writeObject(w, r, http.StatusOK, sc)
	default:
		writeError(w, apierrors.NewMethodNotSupported(ri.Res.GroupResource(), ri.Verb+" on scale"))
	}
}

func patchTypeOf(pt types.PatchType) types.PatchType {
	s := string(pt)
	for i := range s {
		if s[i] == ';' {
			return types.PatchType(s[:i])
		}
	}
	return pt
}

func (s *Server) handleBinding(w http.ResponseWriter, r *http.Request, ri requestInfo) {
	if ri.Verb != "create" || ri.Res.Plural != "pods" {
		writeError(w, apierrors.NewMethodNotSupported(ri.Res.GroupResource(), ri.Verb+" on binding"))
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var b corev1.Binding
	if err := decodeInto(r, body, &b); err != nil {
		writeError(w, err)
		return
	}
	if b.Name != "" && b.Name != ri.Name {
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf("the name of the binding (%s) does not match the pod (%s)", b.Name, ri.Name)))
		return
	}
	if b.Target.Name == "" || (b.Target.Kind != "" && b.Target.Kind != "Node") {
		writeError(w, apierrors.NewInvalid(schemaGK("", "Binding"), ri.Name, invalidTarget(b.Target)))
		return
	}
	main := ri
	main.Subresource = "binding"
	_, err = s.readModifyWrite(r.Context(), main, isDryRun(r.URL.Query()), func(cur runtime.Object) (runtime.Object, error) {
		pod := cur.(*corev1.Pod)
		if pod.DeletionTimestamp != nil {
			return nil, apierrors.NewConflict(ri.Res.GroupResource(), ri.Name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", ri.Name))
		}
		if pod.Spec.NodeName != "" {
			return nil, apierrors.NewConflict(ri.Res.GroupResource(), ri.Name, fmt.Errorf("pod %s is already assigned to node %q", ri.Name, pod.Spec.NodeName))
		}
		if b.UID != "" && b.UID != pod.UID {
			return nil, apierrors.NewConflict(ri.Res.GroupResource(), ri.Name, fmt.Errorf("Precondition failed: UID in precondition: %s, UID in object meta: %s", b.UID, pod.UID))
		}
		pod.Spec.NodeName = b.Target.Name
		setPodCondition(&pod.Status, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
		return pod, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeObject(w, r, http.StatusCreated, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated})
}

// setPodCondition sets or replaces one condition, keeping its transition
// time when the status did not change.
func setPodCondition(st *corev1.PodStatus, c corev1.PodCondition) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == c.Type {
			if st.Conditions[i].Status == c.Status {
				c.LastTransitionTime = st.Conditions[i].LastTransitionTime
			}
			st.Conditions[i] = c
			return
		}
	}
	st.Conditions = append(st.Conditions, c)
}

func (s *Server) handleEviction(w http.ResponseWriter, r *http.Request, ri requestInfo) {
	if ri.Verb != "create" || ri.Res.Plural != "pods" {
		writeError(w, apierrors.NewMethodNotSupported(ri.Res.GroupResource(), ri.Verb+" on eviction"))
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var ev policyv1.Eviction
	if err := decodeInto(r, body, &ev); err != nil {
		writeError(w, err)
		return
	}
	var opts metav1.DeleteOptions
	if ev.DeleteOptions != nil {
		opts = *ev.DeleteOptions
	}
	main := ri
	main.Subresource = ""
	if _, _, err := s.delete(r.Context(), main, opts); err != nil {
		writeError(w, err)
		return
	}
	writeObject(w, r, http.StatusCreated, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated})
}

func schemaGK(group, kind string) schema.GroupKind { return schema.GroupKind{Group: group, Kind: kind} }

func invalidReplicas(n int32) field.ErrorList {
	return field.ErrorList{field.Invalid(field.NewPath("spec", "replicas"), n, "must be greater than or equal to 0")}
}

func invalidTarget(t corev1.ObjectReference) field.ErrorList {
	if t.Name == "" {
		return field.ErrorList{field.Required(field.NewPath("target", "name"), "")}
	}
	return field.ErrorList{field.NotSupported(field.NewPath("target", "kind"), t.Kind, []string{"Node"})}
}

func reflectPtr(n int32) reflect.Value { return reflect.ValueOf(&n) }

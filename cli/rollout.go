package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
	"weir.dev/weir/controlplane/controller/deployment"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"weir.dev/weir/cli/describe"
)

// The Deployment controller's annotations.
const (
	RevisionAnnotation    = "deployment.kubernetes.io/revision"
	ChangeCauseAnnotation = "kubernetes.io/change-cause"
	restartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"
)

func (c *Client) deploymentArg(ctx context.Context, args []string) (*appsv1.Deployment, error) {
	objs, err := c.selectObjects(ctx, args, "", false, false)
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 {
		return nil, errors.New("rollout needs exactly one resource")
	}
	if objs[0].mapping.Resource.Resource != "deployments" {
		return nil, fmt.Errorf("no rollout support for %s in weir yet; deployments are supported", objs[0].mapping.Resource.Resource)
	}
	return c.Typed.AppsV1().Deployments(objs[0].ns).Get(ctx, objs[0].name, metav1.GetOptions{})
}

// RolloutUndo rolls a Deployment back to a revision (0: the previous).
func (c *Client) RolloutUndo(ctx context.Context, s Streams, args []string, revision int64, dry DryRun) error {
	d, err := c.deploymentArg(ctx, args)
	if err != nil {
		return err
	}
	rss, err := c.ownedReplicaSets(ctx, d)
	if err != nil {
		return err
	}
	if d.Spec.Paused {
		return errors.New("you cannot rollback a paused deployment; resume it first with 'weir rollout resume' and try again")
	}
	nd, err := deployment.RollbackTo(d, rss, revision)
	switch {
	case errors.Is(err, deployment.ErrSkipped):
		fmt.Fprintf(s.Out, "deployment.apps/%s skipped rollback%s\n", d.Name, strings.TrimPrefix(err.Error(), deployment.ErrSkipped.Error()))
		return nil
	case errors.Is(err, deployment.ErrNoHistory):
		return fmt.Errorf("no rollout history found for deployment %q", d.Name)
	case errors.Is(err, deployment.ErrRevisionNotFound):
		return fmt.Errorf("unable to find specified revision %d in history", revision)
	case err != nil:
		return err
	}
	if dry == DryRunClient {
		fmt.Fprintf(s.Out, "deployment.apps/%s Pod Template:\n%s", d.Name, describe.PodTemplate(&nd.Spec.Template))
		return nil
	}
	patch, err := json.Marshal([]map[string]any{
		{"op": "replace", "path": "/spec/template", "value": nd.Spec.Template},
		{"op": "add", "path": "/metadata/annotations", "value": nd.Annotations},
	})
	if err != nil {
		return err
	}
	if _, err := c.Typed.AppsV1().Deployments(d.Namespace).Patch(ctx, d.Name, types.JSONPatchType, patch, metav1.PatchOptions{DryRun: dry.opts()}); err != nil {
		return fmt.Errorf("failed restoring revision %d: %w", revision, err)
	}
	fmt.Fprintf(s.Out, "deployment.apps/%s rolled back%s\n", d.Name, dry.suffix())
	return nil
}

// RolloutHistory prints a Deployment's revisions, or one revision's pod
// template.
func (c *Client) RolloutHistory(ctx context.Context, s Streams, args []string, revision int64) error {
	d, err := c.deploymentArg(ctx, args)
	if err != nil {
		return err
	}
	rss, err := c.ownedReplicaSets(ctx, d)
	if err != nil {
		return err
	}
	h := deployment.History(rss)
	if revision > 0 {
		for _, r := range h {
			if r.Number == revision {
				fmt.Fprintf(s.Out, "deployment.apps/%s with revision #%d\n%s", d.Name, revision, describe.PodTemplate(&r.Template))
				return nil
			}
		}
		return fmt.Errorf("unable to find the specified revision")
	}
	fmt.Fprintf(s.Out, "deployment.apps/%s \n", d.Name)
	tw := tabwriter.NewWriter(s.Out, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "REVISION\tCHANGE-CAUSE\n")
	for _, r := range h {
		cause := r.ChangeCause
		if cause == "" {
			cause = "<none>"
		}
		fmt.Fprintf(tw, "%d\t%s\n", r.Number, cause)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(s.Out)
	return nil
}

// RolloutPause pauses (or resumes) a Deployment.
func (c *Client) RolloutPause(ctx context.Context, s Streams, args []string, pause bool) error {
	d, err := c.deploymentArg(ctx, args)
	if err != nil {
		return err
	}
	verb := "paused"
	if !pause {
		verb = "resumed"
	}
	if d.Spec.Paused == pause {
		if pause {
			return fmt.Errorf("deployments.apps %q is already paused", d.Name)
		}
		return fmt.Errorf("deployments.apps %q is not paused", d.Name)
	}
	patch := fmt.Appendf(nil, `{"spec":{"paused":%t}}`, pause)
	if _, err := c.Typed.AppsV1().Deployments(d.Namespace).Patch(ctx, d.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return err
	}
	fmt.Fprintf(s.Out, "deployment.apps/%s %s\n", d.Name, verb)
	return nil
}

// RolloutRestart restarts a Deployment's pods by stamping its template.
func (c *Client) RolloutRestart(ctx context.Context, s Streams, args []string, now time.Time) error {
	d, err := c.deploymentArg(ctx, args)
	if err != nil {
		return err
	}
	if d.Spec.Paused {
		return fmt.Errorf("can't restart paused deployment (run rollout resume first)")
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{restartedAtAnnotation: now.Format(time.RFC3339)}}}}})
	if _, err := c.Typed.AppsV1().Deployments(d.Namespace).Patch(ctx, d.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return err
	}
	fmt.Fprintf(s.Out, "deployment.apps/%s restarted\n", d.Name)
	return nil
}

// DeploymentStatus is kubectl's rollout status message for d and whether
// the rollout is done.
func DeploymentStatus(d *appsv1.Deployment) (string, bool, error) {
	if d.Generation > d.Status.ObservedGeneration {
		return "Waiting for deployment spec update to be observed...\n", false, nil
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return "", false, fmt.Errorf("deployment %q exceeded its progress deadline", d.Name)
		}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	switch {
	case st.UpdatedReplicas < want:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...\n", d.Name, st.UpdatedReplicas, want), false, nil
	case st.Replicas > st.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...\n", d.Name, st.Replicas-st.UpdatedReplicas), false, nil
	case st.AvailableReplicas < st.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...\n", d.Name, st.AvailableReplicas, st.UpdatedReplicas), false, nil
	}
	return fmt.Sprintf("deployment %q successfully rolled out\n", d.Name), true, nil
}

// RolloutStatus waits for a Deployment's rollout to finish, printing each
// new state, until timeout (0: no limit); with watch false it prints once.
func (c *Client) RolloutStatus(ctx context.Context, s Streams, args []string, watch bool, timeout time.Duration) error {
	d, err := c.deploymentArg(ctx, args)
	if err != nil {
		return err
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	last := ""
	for {
		msg, done, err := DeploymentStatus(d)
		if err != nil {
			return err
		}
		if msg != last {
			fmt.Fprint(s.Out, msg)
			last = msg
		}
		if done || !watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("timed out waiting for the condition")
		case <-time.After(200 * time.Millisecond):
		}
		if d, err = c.Typed.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{}); err != nil {
			if ctx.Err() != nil {
				return errors.New("timed out waiting for the condition")
			}
			return err
		}
	}
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// workload is a DaemonSet or Deployment `weft install` waits for.
type workload struct {
	kind, namespace, name string
}

func (w workload) String() string { return w.kind + " " + w.namespace + "/" + w.name }

// readiness is one look at a workload: ready or not, a one-line summary,
// and the selector of its pods.
type readiness struct {
	ready    bool
	summary  string
	selector *metav1.LabelSelector
}

// check reads the workload's status the way `kubectl rollout status` does.
func check(ctx context.Context, c kubernetes.Interface, w workload) (readiness, error) {
	switch w.kind {
	case "DaemonSet":
		ds, err := c.AppsV1().DaemonSets(w.namespace).Get(ctx, w.name, metav1.GetOptions{})
		if err != nil {
			return readiness{}, fmt.Errorf("get %s: %w", w, err)
		}
		return daemonSetReadiness(ds), nil
	case "Deployment":
		d, err := c.AppsV1().Deployments(w.namespace).Get(ctx, w.name, metav1.GetOptions{})
		if err != nil {
			return readiness{}, fmt.Errorf("get %s: %w", w, err)
		}
		return deploymentReadiness(d), nil
	}
	return readiness{}, fmt.Errorf("wait for %s: only DaemonSets and Deployments are waited for", w)
}

const noController = "not seen by its controller yet (observed generation %d of %d): is kube-controller-manager running?"

func daemonSetReadiness(ds *appsv1.DaemonSet) readiness {
	s := ds.Status
	r := readiness{selector: ds.Spec.Selector}
	switch {
	case s.ObservedGeneration < ds.Generation:
		r.summary = fmt.Sprintf(noController, s.ObservedGeneration, ds.Generation)
	case s.UpdatedNumberScheduled < s.DesiredNumberScheduled:
		r.summary = fmt.Sprintf("%d of %d nodes run the current pod", s.UpdatedNumberScheduled, s.DesiredNumberScheduled)
	case s.NumberAvailable < s.DesiredNumberScheduled:
		r.summary = fmt.Sprintf("%d of %d pods ready", s.NumberAvailable, s.DesiredNumberScheduled)
	default:
		r.ready = true
		r.summary = fmt.Sprintf("%d of %d pods ready", s.NumberAvailable, s.DesiredNumberScheduled)
	}
	return r
}

func deploymentReadiness(d *appsv1.Deployment) readiness {
	s := d.Status
	r := readiness{selector: d.Spec.Selector}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	for _, c := range s.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			r.summary = fmt.Sprintf("rollout stuck: %s", c.Message)
			return r
		}
	}
	switch {
	case s.ObservedGeneration < d.Generation:
		r.summary = fmt.Sprintf(noController, s.ObservedGeneration, d.Generation)
	case s.UpdatedReplicas < want:
		r.summary = fmt.Sprintf("%d of %d pods updated", s.UpdatedReplicas, want)
	case s.AvailableReplicas < want:
		r.summary = fmt.Sprintf("%d of %d pods ready", s.AvailableReplicas, want)
	default:
		r.ready = true
		r.summary = fmt.Sprintf("%d of %d pods ready", s.AvailableReplicas, want)
	}
	return r
}

// errNotReady marks a wait that ended with workloads not ready.
var errNotReady = errors.New("not ready")

// waitReady polls the workloads every interval until all are ready or
// timeout passes, printing a line to progress whenever one's state
// changes. On timeout the error names each workload that is not ready,
// why, and each of its pods that is not ready with its reason.
func waitReady(ctx context.Context, c kubernetes.Interface, ws []workload, timeout, interval time.Duration, progress io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := map[workload]readiness{}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		allReady := true
		for _, w := range ws {
			r, err := check(ctx, c, w)
			if err != nil {
				if ctx.Err() != nil {
					allReady = false
					break
				}
				return err
			}
			if prev, ok := last[w]; !ok || prev.summary != r.summary {
				state := "waiting"
				if r.ready {
					state = "ready"
				}
				fmt.Fprintf(progress, "%s %s: %s\n", state, w, r.summary)
			}
			last[w] = r
			allReady = allReady && r.ready
		}
		if allReady && len(last) == len(ws) {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return notReadyError(context.WithoutCancel(ctx), c, ws, last, timeout)
		}
	}
}

func notReadyError(ctx context.Context, c kubernetes.Interface, ws []workload, last map[workload]readiness, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var b strings.Builder
	for _, w := range ws {
		r, ok := last[w]
		if ok && r.ready {
			continue
		}
		if !ok {
			fmt.Fprintf(&b, "\n  %s: status not read before the deadline", w)
			continue
		}
		fmt.Fprintf(&b, "\n  %s: %s", w, r.summary)
		for _, p := range podProblems(ctx, c, w.namespace, r.selector) {
			fmt.Fprintf(&b, "\n    %s", p)
		}
	}
	return fmt.Errorf("%w after %s:%s", errNotReady, timeout, b.String())
}

// podProblems describes each pod of the selector that is not ready.
func podProblems(ctx context.Context, c kubernetes.Interface, ns string, sel *metav1.LabelSelector) []string {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || sel == nil {
		return nil
	}
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: s.String()})
	if err != nil {
		return []string{fmt.Sprintf("list pods: %v", err)}
	}
	if len(pods.Items) == 0 {
		return []string{"no pods exist (" + s.String() + ")"}
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	var out []string
	for i := range pods.Items {
		if why := podNotReady(&pods.Items[i]); why != "" {
			out = append(out, why)
		}
	}
	return out
}

// podNotReady says why a pod is not ready, or "" when it is.
func podNotReady(p *corev1.Pod) string {
	where := "pod " + p.Name
	if p.Spec.NodeName != "" {
		where += " on node " + p.Spec.NodeName
	}
	var reasons []string
	for _, cs := range p.Status.InitContainerStatuses {
		if st := containerState(cs); st != "" && (cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0) {
			reasons = append(reasons, "init container "+cs.Name+" "+st)
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if !cs.Ready {
			if st := containerState(cs); st != "" {
				reasons = append(reasons, "container "+cs.Name+" "+st)
			}
		}
	}
	ready := false
	for _, c := range p.Status.Conditions {
		switch {
		case c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue:
			ready = true
		case c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse:
			reasons = append(reasons, "not scheduled: "+join(c.Reason, c.Message))
		}
	}
	if ready {
		return ""
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "phase "+string(p.Status.Phase)+", not ready")
	}
	return where + ": " + strings.Join(reasons, "; ")
}

func containerState(cs corev1.ContainerStatus) string {
	switch s := cs.State; {
	case s.Waiting != nil:
		return "waiting: " + join(s.Waiting.Reason, s.Waiting.Message)
	case s.Terminated != nil:
		return fmt.Sprintf("terminated: %s (exit code %d)", join(s.Terminated.Reason, s.Terminated.Message), s.Terminated.ExitCode)
	case s.Running != nil && !cs.Ready:
		return fmt.Sprintf("running, not ready (restarted %d times)", cs.RestartCount)
	}
	return ""
}

func join(reason, message string) string {
	if message == "" {
		return reason
	}
	return reason + " (" + strings.TrimSpace(message) + ")"
}

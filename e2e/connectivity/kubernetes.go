package connectivity

import (
	"context"
	"fmt"
	"io"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weftnet/weft/testenv"
)

// kubeNamespace holds the test pods in a Kubernetes-mode environment: the
// namespace a standalone test pod gets by default.
const kubeNamespace = "default"

// kubeClient reaches the kube-apiserver of node's cluster.
func (fx *fixture) kubeClient(node string) (kubernetes.Interface, string, error) {
	n, err := fx.env.Node(node)
	if err != nil {
		return nil, "", err
	}
	if cs := fx.kube[n.Cluster]; cs != nil {
		return cs, n.Cluster, nil
	}
	c, err := fx.env.Cluster(n.Cluster)
	if err != nil {
		return nil, "", err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig of %s: %w", c.Name, err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, "", err
	}
	if fx.kube == nil {
		fx.kube = map[string]kubernetes.Interface{}
	}
	fx.kube[n.Cluster] = cs
	return cs, n.Cluster, nil
}

// ensureKubePod makes Pod default/name on node with labels (reusing one
// from an earlier run, relabelled if need be) and waits until testenv's
// kubelet has wired it; it returns the testenv pod.
func (fx *fixture) ensureKubePod(ctx context.Context, name, node string, labels map[string]string) (testenv.Pod, error) {
	cs, cluster, err := fx.kubeClient(node)
	if err != nil {
		return testenv.Pod{}, err
	}
	pods := cs.CoreV1().Pods(kubeNamespace)
	have, err := pods.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		fmt.Fprintf(fx.opts.Progress, "• creating test pod %s/%s on %s through the Kubernetes API\n", kubeNamespace, name, node)
		_, err = pods.Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "probe", Image: "weft.test/connectivity"}}},
		}, metav1.CreateOptions{})
	case err == nil && have.Spec.NodeName != node:
		return testenv.Pod{}, fmt.Errorf("prepare connectivity test: pod %s/%s of %s runs on %s, not %s: delete it (kubectl delete pod %s)", kubeNamespace, name, cluster, have.Spec.NodeName, node, name)
	case err == nil && !maps.Equal(have.Labels, labels):
		have.Labels = labels
		_, err = pods.Update(ctx, have, metav1.UpdateOptions{})
	}
	if err != nil {
		return testenv.Pod{}, fmt.Errorf("prepare connectivity test: pod %s/%s of %s: %w", kubeNamespace, name, cluster, err)
	}
	want := testenv.KubePodName(cluster, kubeNamespace, name)
	ctx, cancel := context.WithTimeout(ctx, fx.opts.PropagationTimeout)
	defer cancel()
	for {
		if e, err := testenv.Load(fx.env.Name, io.Discard, nil); err == nil {
			if p, err := e.Pod(want); err == nil && p.IP != "" {
				fx.env = e
				return p, nil
			}
		}
		select {
		case <-ctx.Done():
			return testenv.Pod{}, fmt.Errorf("prepare connectivity test: pod %s/%s of %s not running after %v (see kubectl describe pod %s)", kubeNamespace, name, cluster, fx.opts.PropagationTimeout, name)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// deleteKubePod deletes the Pod; testenv's kubelet removes its namespace.
func (fx *fixture) deleteKubePod(ctx context.Context, p endpoint) error {
	cs, _, err := fx.kubeClient(p.node)
	if err != nil {
		return err
	}
	err = cs.CoreV1().Pods(kubeNamespace).Delete(ctx, p.name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

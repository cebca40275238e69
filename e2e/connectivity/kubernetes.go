package connectivity

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weftnet/weft/testenv"
)

// kubeNamespace holds the test pods, services and policies in a
// Kubernetes-mode environment (as cilium-cli's cilium-test namespace).
// Elsewhere they are in "default", the namespace a pod gets without
// Kubernetes.
const kubeNamespace = "weft-test"

// namespace is where the test's pods, services and policies are.
func (fx *fixture) namespace() string {
	if fx.env != nil && fx.env.Kubernetes {
		return kubeNamespace
	}
	return "default"
}

// ensureKubeNamespace creates the test namespace in cs's cluster when it
// is missing.
func (fx *fixture) ensureKubeNamespace(ctx context.Context, cs kubernetes.Interface, cluster string) error {
	_, err := cs.CoreV1().Namespaces().Get(ctx, kubeNamespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		fmt.Fprintf(fx.opts.Progress, "• creating namespace %s in %s through the Kubernetes API\n", kubeNamespace, cluster)
		_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: kubeNamespace, Labels: testLabels}}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("prepare connectivity test: namespace %s of %s: %w", kubeNamespace, cluster, err)
	}
	return nil
}

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
	if err := fx.ensureKubeNamespace(context.Background(), cs, n.Cluster); err != nil {
		return nil, "", err
	}
	if fx.kube == nil {
		fx.kube = map[string]kubernetes.Interface{}
	}
	fx.kube[n.Cluster] = cs
	return cs, n.Cluster, nil
}

// ensureKubePod makes Pod weft-test/name on node with labels (reusing one
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

// applyKubeService creates or updates test service svc as a Kubernetes
// Service of cl (the apiserver mirrors it to the agents) and returns the
// ClusterIP and NodePort Kubernetes allocated.
func (fx *fixture) applyKubeService(ctx context.Context, cl cluster, svc serviceSpec) (netip.Addr, uint16, error) {
	cs, _, err := fx.kubeClient(cl.nodes[0].name)
	if err != nil {
		return netip.Addr{}, 0, err
	}
	fmt.Fprintf(fx.opts.Progress, "• applying service %s/%s in %s through the Kubernetes API\n", kubeNamespace, svc.name, cl.name)
	typ := corev1.ServiceTypeClusterIP
	if svc.nodePort {
		typ = corev1.ServiceTypeNodePort
	}
	want := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: svc.name, Namespace: kubeNamespace, Labels: testLabels, Annotations: svc.annotations},
		Spec: corev1.ServiceSpec{
			Type:     typ,
			Selector: testLabels,
			Ports:    []corev1.ServicePort{{Name: "tcp", Port: servicePort, TargetPort: intstr.FromInt32(tcpPort), Protocol: corev1.ProtocolTCP}},
		},
	}
	services := cs.CoreV1().Services(kubeNamespace)
	got, err := services.Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) { // left by an earlier run: replace it
		if err = services.Delete(ctx, svc.name, metav1.DeleteOptions{}); err == nil {
			got, err = services.Create(ctx, want, metav1.CreateOptions{})
		}
	}
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("apply test service %s/%s in %s: %w", kubeNamespace, svc.name, cl.name, err)
	}
	ip, err := netip.ParseAddr(got.Spec.ClusterIP)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("apply test service %s/%s in %s: ClusterIP %q: %w", kubeNamespace, svc.name, cl.name, got.Spec.ClusterIP, err)
	}
	return ip, uint16(got.Spec.Ports[0].NodePort), nil
}

// deleteKubeService deletes test service name of cl; a missing one is not
// an error.
func (fx *fixture) deleteKubeService(ctx context.Context, cl cluster, name string) error {
	cs, _, err := fx.kubeClient(cl.nodes[0].name)
	if err != nil {
		return err
	}
	err = cs.CoreV1().Services(kubeNamespace).Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

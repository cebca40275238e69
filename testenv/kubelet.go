package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/weftnet/weft/k8s"
	"github.com/weftnet/weft/k8s/kubeserver"
)

// RunKube runs cluster's Kubernetes control plane (etcd and kube-apiserver,
// children that die with this process), its forwarder into the underlay
// namespace and testenv's kubelet until ctx ends. It is the process
// `weft testenv run-kube` that Up starts.
func RunKube(ctx context.Context, envName, cluster string, log *slog.Logger) error {
	e, err := Load(envName, io.Discard, log)
	if err != nil {
		return err
	}
	c, err := e.Cluster(cluster)
	if err != nil {
		return err
	}
	if !e.Kubernetes {
		return fmt.Errorf("run Kubernetes of %s: environment %q was not brought up with --kubernetes", cluster, envName)
	}
	dir := e.kubeDir(c.Name)
	logf, err := os.OpenFile(filepath.Join(dir, "control-plane.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	srv, err := kubeserver.Start(ctx, kubeserver.Options{
		Dir: dir, Log: logf, ExtraIPs: []net.IP{storeIP(c.ID).AsSlice()},
	})
	if err != nil {
		return fmt.Errorf("%w (log %s)", err, logf.Name())
	}
	defer srv.Stop()
	var ln net.Listener
	err = InNetNS(e.Underlay, func() (err error) {
		ln, err = net.Listen("tcp4", kubeAPIUnderlay(c.ID))
		return err
	})
	if err != nil {
		return fmt.Errorf("listen for the API in %s: %w", e.Underlay, err)
	}
	go forward(ctx, ln, strings.TrimPrefix(srv.Host(), "https://"), log)
	if err := srv.WriteKubeconfig(c.UnderlayKubeconfig, "https://"+kubeAPIUnderlay(c.ID)); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(srv.RESTConfig())
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(srv.RESTConfig())
	if err != nil {
		return err
	}
	if err := k8s.InstallCRDs(ctx, dyn); err != nil {
		return err
	}
	kl := &kubelet{env: e, cluster: c, cs: cs, log: log, running: map[string]*kubePod{}}
	for _, n := range e.Nodes {
		if n.Cluster == c.Name {
			kl.nodes = append(kl.nodes, n)
		}
	}
	if err := kl.registerNodes(ctx); err != nil {
		return err
	}
	if err := kl.removeStale(ctx); err != nil {
		return err
	}
	ready := filepath.Join(dir, kubeReadyFile)
	if err := os.WriteFile(ready, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	log.Info("Kubernetes ready", "cluster", c.Name, "host", srv.Host(), "underlay", kubeAPIUnderlay(c.ID))
	podDone := make(chan struct{})
	if e.ChartAPIServer {
		cp := &chartPod{env: e, cluster: c, cs: cs, caPEM: srv.RESTConfig().CAData, log: log}
		go func() { defer close(podDone); cp.run(ctx) }()
	} else {
		close(podDone)
	}
	err = kl.run(ctx)
	kl.stopAll()
	<-podDone
	return err
}

// kubelet is testenv's kubelet for one cluster's nodes: it binds unbound
// Pods round-robin, gives each bound Pod a namespace wired by weft-cni with
// the CNI_ARGS kubelet sends, runs an echo server on its declared
// containerPorts, writes its status back, and tears it down when the Pod is
// deleted.
type kubelet struct {
	env     *Env
	cluster Cluster
	nodes   []Node
	cs      kubernetes.Interface
	log     *slog.Logger
	pods    corelisters.PodLister
	queue   workqueue.TypedRateLimitingInterface[string]

	mu      sync.Mutex
	next    int                 // round-robin position of the binder
	running map[string]*kubePod // by namespace/name
}

// kubePod is one Pod wired by the kubelet.
type kubePod struct {
	uid     types.UID
	name    string // testenv pod name
	ip      netip.Addr
	node    Node
	servers []io.Closer
}

// registerNodes creates (or refreshes) one Ready Node object per node.
func (k *kubelet) registerNodes(ctx context.Context) error {
	for _, n := range k.nodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{
			"kubernetes.io/hostname": n.Name, "kubernetes.io/os": "linux",
			"topology.kubernetes.io/zone": k.cluster.Name,
		}}}
		if _, err := k.cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("register node %s: %w", n.Name, err)
		}
		have, err := k.cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("register node %s: %w", n.Name, err)
		}
		now := metav1.Now()
		have.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.IP}, {Type: corev1.NodeHostName, Address: n.Name}}
		have.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			Reason: "TestenvKubelet", Message: "weft-agent of the node runs", LastHeartbeatTime: now, LastTransitionTime: now}}
		if _, err := k.cs.CoreV1().Nodes().UpdateStatus(ctx, have, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("register node %s: %w", n.Name, err)
		}
	}
	return nil
}

// removeStale deletes the pods an earlier run of this kubelet wired (after a
// crash): the informer's first listing wires what still exists anew.
func (k *kubelet) removeStale(ctx context.Context) error {
	prefix := k.cluster.Name + "-"
	var errs []error
	for _, p := range k.env.Pods {
		if p.Kube != "" && strings.HasPrefix(p.Name, prefix) {
			errs = append(errs, k.env.DelPod(ctx, p.Name))
		}
	}
	return errors.Join(errs...)
}

func (k *kubelet) run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(k.cs, 0)
	inf := factory.Core().V1().Pods()
	k.pods = inf.Lister()
	k.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](200*time.Millisecond, 10*time.Second),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "testenv-kubelet"})
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			k.queue.Add(key)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, obj any) { enqueue(obj) }, DeleteFunc: enqueue,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		return ctx.Err()
	}
	var wg sync.WaitGroup
	for range 4 { // weft-cni ADD takes a while; pods of other nodes need not wait
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k.work(ctx) {
			}
		}()
	}
	<-ctx.Done()
	k.queue.ShutDown()
	wg.Wait()
	return nil
}

func (k *kubelet) work(ctx context.Context) bool {
	key, quit := k.queue.Get()
	if quit {
		return false
	}
	defer k.queue.Done(key)
	if err := k.sync(ctx, key); err != nil && ctx.Err() == nil {
		k.log.Warn("kubelet: retrying pod", "pod", key, "err", err)
		k.queue.AddRateLimited(key)
		return true
	}
	k.queue.Forget(key)
	return true
}

// sync brings pod key to what its object says.
func (k *kubelet) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := k.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return k.teardown(ctx, key)
	}
	if err != nil {
		return err
	}
	k.mu.Lock()
	have := k.running[key]
	k.mu.Unlock()
	if have != nil && have.uid != pod.UID { // deleted and created again
		if err := k.teardown(ctx, key); err != nil {
			return err
		}
		have = nil
	}
	switch {
	case pod.DeletionTimestamp != nil:
		if err := k.teardown(ctx, key); err != nil {
			return err
		}
		// What a kubelet does once the containers are gone: the object
		// goes away at once.
		grace := int64(0)
		err := k.cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: &grace, Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	case pod.Spec.NodeName == "":
		return k.bind(ctx, pod)
	case pod.Spec.HostNetwork:
		return k.writeStatus(ctx, pod, nil, "hostNetwork pods are not run by testenv's kubelet")
	}
	node, ok := k.node(pod.Spec.NodeName)
	if !ok {
		return k.writeStatus(ctx, pod, nil, fmt.Sprintf("node %q is not a node of cluster %s (its nodes: %s)",
			pod.Spec.NodeName, k.cluster.Name, nodeNames(k.nodes)))
	}
	if have == nil {
		if have, err = k.start(ctx, pod, node); err != nil {
			_ = k.writeStatus(ctx, pod, nil, err.Error())
			return err
		}
	}
	return k.writeStatus(ctx, pod, have, "")
}

func (k *kubelet) node(name string) (Node, bool) {
	i := slices.IndexFunc(k.nodes, func(n Node) bool { return n.Name == name })
	if i < 0 {
		return Node{}, false
	}
	return k.nodes[i], true
}

// bind assigns pod to the next node, as a scheduler would.
func (k *kubelet) bind(ctx context.Context, pod *corev1.Pod) error {
	k.mu.Lock()
	n := k.nodes[k.next%len(k.nodes)]
	k.next++
	k.mu.Unlock()
	err := k.cs.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: n.Name},
	}, metav1.CreateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // bound or deleted meanwhile; its next event says which
	}
	if err != nil {
		return fmt.Errorf("bind pod %s/%s to %s: %w", pod.Namespace, pod.Name, n.Name, err)
	}
	k.log.Info("kubelet: bound pod", "pod", pod.Namespace+"/"+pod.Name, "node", n.Name)
	return nil
}

// start wires pod on node and starts its echo servers.
func (k *kubelet) start(ctx context.Context, pod *corev1.Pod, node Node) (*kubePod, error) {
	key := pod.Namespace + "/" + pod.Name
	name := KubePodName(k.cluster.Name, pod.Namespace, pod.Name)
	p, err := k.env.addKubePod(ctx, PodSpec{Name: name, Node: node.Name, Namespace: pod.Namespace}, key)
	if err != nil {
		return nil, err
	}
	kp := &kubePod{uid: pod.UID, name: name, ip: p.Addr(), node: node}
	for _, c := range pod.Spec.Containers {
		for _, port := range c.Ports {
			var srv io.Closer
			switch port.Protocol {
			case corev1.ProtocolTCP, corev1.ProtocolUDP, "":
				srv, err = ServeEcho(p.NetNS, netip.AddrPortFrom(p.Addr(), uint16(port.ContainerPort)), port.Protocol == corev1.ProtocolUDP, pod.Name)
			default:
				err = fmt.Errorf("containerPort %d/%s: testenv's echo server serves TCP and UDP", port.ContainerPort, port.Protocol)
			}
			if err != nil {
				kp.close()
				_ = k.env.DelPod(ctx, name)
				return nil, fmt.Errorf("pod %s: %w", key, err)
			}
			kp.servers = append(kp.servers, srv)
		}
	}
	k.mu.Lock()
	k.running[key] = kp
	k.mu.Unlock()
	k.log.Info("kubelet: started pod", "pod", key, "node", node.Name, "ip", kp.ip, "testenv", name)
	return kp, nil
}

func (kp *kubePod) close() {
	for _, s := range kp.servers {
		s.Close()
	}
}

// teardown stops pod key's servers and removes its namespace.
func (k *kubelet) teardown(ctx context.Context, key string) error {
	k.mu.Lock()
	kp := k.running[key]
	k.mu.Unlock()
	if kp == nil {
		return nil
	}
	kp.close()
	if err := k.env.DelPod(ctx, kp.name); err != nil {
		return err
	}
	k.mu.Lock()
	delete(k.running, key)
	k.mu.Unlock()
	k.log.Info("kubelet: removed pod", "pod", key, "testenv", kp.name)
	return nil
}

// stopAll closes every pod's servers at exit; the namespaces stay for
// `testenv down` (or the next run's removeStale).
func (k *kubelet) stopAll() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, kp := range k.running {
		kp.close()
	}
}

// writeStatus writes the pod's status as a kubelet would: Running and
// Ready with its address, or Pending with why it could not run.
func (k *kubelet) writeStatus(ctx context.Context, pod *corev1.Pod, kp *kubePod, problem string) error {
	st := pod.Status.DeepCopy()
	now := metav1.Now()
	cond := func(t corev1.PodConditionType, ok bool, reason, msg string) {
		s := corev1.ConditionFalse
		if ok {
			s = corev1.ConditionTrue
		}
		i := slices.IndexFunc(st.Conditions, func(c corev1.PodCondition) bool { return c.Type == t })
		c := corev1.PodCondition{Type: t, Status: s, Reason: reason, Message: msg, LastTransitionTime: now}
		switch {
		case i < 0:
			st.Conditions = append(st.Conditions, c)
		case st.Conditions[i].Status != s || st.Conditions[i].Message != msg:
			st.Conditions[i] = c
		}
	}
	if kp == nil {
		st.Phase = corev1.PodPending
		cond(corev1.PodReady, false, "TestenvKubelet", problem)
	} else {
		st.Phase = corev1.PodRunning
		st.HostIP, st.PodIP = kp.node.IP, kp.ip.String()
		st.HostIPs, st.PodIPs = []corev1.HostIP{{IP: kp.node.IP}}, []corev1.PodIP{{IP: st.PodIP}}
		if st.StartTime == nil {
			st.StartTime = &now
		}
		for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
			cond(t, true, "", "")
		}
		if len(st.ContainerStatuses) != len(pod.Spec.Containers) {
			st.ContainerStatuses = nil
			for _, c := range pod.Spec.Containers {
				st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
					Name: c.Name, Image: c.Image, Ready: true, Started: ptr(true),
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: *st.StartTime}},
				})
			}
		}
	}
	if statusEqual(&pod.Status, st) {
		return nil
	}
	next := pod.DeepCopy()
	next.Status = *st
	_, err := k.cs.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // a newer version is queued
	}
	return err
}

func statusEqual(a, b *corev1.PodStatus) bool {
	if a.Phase != b.Phase || a.PodIP != b.PodIP || a.HostIP != b.HostIP || len(a.Conditions) != len(b.Conditions) ||
		len(a.ContainerStatuses) != len(b.ContainerStatuses) {
		return false
	}
	for i := range a.Conditions {
		if a.Conditions[i].Type != b.Conditions[i].Type || a.Conditions[i].Status != b.Conditions[i].Status || a.Conditions[i].Message != b.Conditions[i].Message {
			return false
		}
	}
	return true
}

func ptr[T any](v T) *T { return &v }

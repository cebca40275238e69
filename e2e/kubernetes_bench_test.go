package e2e

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weftnet/weft/datapath/bpf"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/testenv"
)

// BenchmarkKubernetesToBPF: two Kubernetes-mode clusters of two nodes with
// 1k global Services × 10 endpoints (EndpointSlices) loaded in c1 (the
// same Services, without endpoints, in c2). Measured, one change after
// another:
//
//   - EndpointSlice change (an 11th endpoint) in c1's Kubernetes until the
//     frontend has 11 backends in the BPF service map of every node of c1
//     and of c2; the baseline is the same change written as a service
//     record straight into c1's store (no Kubernetes);
//   - Pod create in c1's Kubernetes until its address is in the BPF ipcache
//     of every node of c1 and c2 (testenv's kubelet binds and wires it
//     through weft-cni in between).
func BenchmarkKubernetesToBPF(b *testing.B) {
	const services, endpoints, changes, pods = 1000, 10, 100, 30
	meshBinaries(b)
	spec := testenv.DefaultSpec()
	spec.Clusters, spec.Nodes, spec.Kubernetes = 2, 2, true
	e := up(b, "k8sbpf", spec)
	waitMeshSynced(b, e, map[string][]string{"c1": {"c2"}, "c2": {"c1"}})
	ctx := context.Background()
	kube := map[string]kubernetes.Interface{}
	for _, c := range e.Clusters {
		rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
		if err != nil {
			b.Fatal(err)
		}
		rc.QPS, rc.Burst = 1000, 2000
		if kube[c.Name], err = kubernetes.NewForConfig(rc); err != nil {
			b.Fatal(err)
		}
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}
	clusterIPs := map[string][]netip.Addr{}
	for _, c := range []string{"c1", "c2"} {
		if _, err := kube[c].CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		for i := range services {
			svc, err := kube[c].CoreV1().Services("bench").Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "svc-" + strconv.Itoa(i), Annotations: map[string]string{"service.cilium.io/global": "true"}},
				Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}},
			}, metav1.CreateOptions{})
			if err != nil {
				b.Fatal(err)
			}
			clusterIPs[c] = append(clusterIPs[c], netip.MustParseAddr(svc.Spec.ClusterIP))
			if c == "c1" {
				if _, err := kube[c].DiscoveryV1().EndpointSlices("bench").Create(ctx, benchSlice(i, endpoints), metav1.CreateOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	lbMaps := map[string]*ebpf.Map{}
	for _, n := range e.Nodes {
		m, err := ebpf.LoadPinnedMap(filepath.Join(e.BPFFS, "weft", n.Name, "weft_lb_services"), &ebpf.LoadPinOptions{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		lbMaps[n.Name] = m
	}
	// waitBackends waits until svc i has want backends on every node of
	// cluster and returns when it had.
	waitBackends := func(cluster string, i, want int) time.Time {
		deadline := time.Now().Add(time.Minute)
		for _, node := range nodesOf(e, cluster) {
			key := bpf.NewServiceKey(netip.AddrPortFrom(clusterIPs[cluster][i], 80), 6)
			for {
				var v bpf.ServiceValue
				if lbMaps[node].Lookup(&key, &v) == nil && int(v.Count) == want {
					break
				}
				if time.Now().After(deadline) {
					out, _ := exec.Command(e.Bin.Weft, "--name", e.Name, "--node", node, "service", "get", "bench/svc-"+strconv.Itoa(i)).CombinedOutput()
					st, _ := exec.Command(e.Bin.Weft, "--name", e.Name, "--node", node, "status").CombinedOutput()
					b.Fatalf("svc-%d: not %d backends on %s after a minute (%d):\n%s\n%s", i, want, node, v.Count, out, st)
				}
				time.Sleep(100 * time.Microsecond) // polling a map, not synchronising
			}
		}
		return time.Now()
	}
	b.Logf("loaded %d Services × %d endpoints; waiting for every node to serve them", services, endpoints)
	for i := range services {
		waitBackends("c1", i, endpoints)
		waitBackends("c2", i, endpoints)
	}

	// Kubernetes: an EndpointSlice gains an endpoint.
	var kLocal, kRemote []time.Duration
	for i := range changes {
		s := benchSlice(i, endpoints+1)
		start := time.Now()
		if _, err := kube["c1"].DiscoveryV1().EndpointSlices("bench").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		kLocal = append(kLocal, waitBackends("c1", i, endpoints+1).Sub(start))
		kRemote = append(kRemote, waitBackends("c2", i, endpoints+1).Sub(start))
	}
	// Baseline: the same change written into c1's store, where the mirror
	// would write it, for the next services.
	store := hostStore(b, e, "c1")
	keys := records.NewKeys(store.Prefix())
	var sLocal, sRemote []time.Duration
	for i := changes; i < 2*changes; i++ {
		key := keys.Service("c1", "bench", "svc-"+strconv.Itoa(i))
		kv, err := store.Get(ctx, key)
		if err != nil {
			b.Fatal(err)
		}
		rec, err := keys.DecodeService(key, kv.Value)
		if err != nil {
			b.Fatal(err)
		}
		rec.Backends = append(rec.Backends, records.Backend{IP: benchEndpoint(i, endpoints), Port: 8080, Protocol: "TCP", PortName: "http", Ready: true, Serving: true})
		val, err := records.Encode(key, &rec)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := store.Update(ctx, key, val); err != nil {
			b.Fatal(err)
		}
		sLocal = append(sLocal, waitBackends("c1", i, endpoints+1).Sub(start))
		sRemote = append(sRemote, waitBackends("c2", i, endpoints+1).Sub(start))
	}

	// Pods: create, wait until every node has its address.
	ipcaches := map[string][]*ebpf.Map{}
	for _, n := range e.Nodes {
		ipcaches[n.Cluster] = append(ipcaches[n.Cluster], pinnedIPCache(b, e, n.Name))
	}
	var pLocal, pRemote []time.Duration
	for i := range pods {
		name := "pod-" + strconv.Itoa(i)
		start := time.Now()
		_, err := kube["c1"].CoreV1().Pods("bench").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "bench"}},
			Spec:       corev1.PodSpec{NodeName: fmt.Sprintf("c1-n%d", i%2+1), Containers: []corev1.Container{{Name: "c", Image: "weft.test/bench"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		ip := waitKubePodIP(b, e, testenv.KubePodName("c1", "bench", name))
		pLocal = append(pLocal, waitInMaps(b, ipcaches["c1"], ip).Sub(start))
		pRemote = append(pRemote, waitInMaps(b, ipcaches["c2"], ip).Sub(start))
	}
	for b.Loop() {
	}
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"slice-local", kLocal}, {"slice-remote", kRemote}, {"store-local", sLocal}, {"store-remote", sRemote}, {"pod-local", pLocal}, {"pod-remote", pRemote}} {
		b.ReportMetric(pct(m.d, 50), m.name+"-p50-ms")
		b.ReportMetric(pct(m.d, 99), m.name+"-p99-ms")
	}
	b.ReportMetric(pct(kLocal, 99)/pct(sLocal, 99), "p99-slice/store-local")
	b.ReportMetric(pct(kRemote, 99)/pct(sRemote, 99), "p99-slice/store-remote")
}

// benchEndpoint is endpoint j of bench service i.
func benchEndpoint(i, j int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 200 + byte(i/250), byte(i % 250), byte(j + 1)})
}

// benchSlice is bench service i's EndpointSlice with n ready endpoints.
func benchSlice(i, n int) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "svc-" + strconv.Itoa(i) + "-1", Namespace: "bench",
			Labels: map[string]string{discoveryv1.LabelServiceName: "svc-" + strconv.Itoa(i)}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptrTo("http"), Port: ptrTo(int32(8080)), Protocol: ptrTo(corev1.ProtocolTCP)}},
	}
	for j := range n {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{benchEndpoint(i, j).String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(true), Serving: ptrTo(true)}})
	}
	return s
}

func ptrTo[T any](v T) *T { return &v }

// waitKubePodIP waits until testenv's kubelet has wired pod and returns
// its address.
func waitKubePodIP(b testing.TB, e *testenv.Env, pod string) netip.Addr {
	deadline := time.Now().Add(time.Minute)
	for {
		if f, err := testenv.Load(e.Name, io.Discard, nil); err == nil {
			if p, err := f.Pod(pod); err == nil && p.IP != "" {
				return p.Addr()
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("pod %s not wired after a minute", pod)
		}
		time.Sleep(time.Millisecond) // polling a file, not synchronising
	}
}

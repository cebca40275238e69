package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weftnet/weft/k8s/k8stest"
)

const testEndpoints = "--kvstore-endpoints=http://10.0.0.5:2379"

// runWeft runs the weft command tree with args and the chart of this
// commit, returning stdout, stderr and the error.
func runWeft(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	r := runCLI(t, t.TempDir(), nil, args...)
	return r.stdout, r.stderr, r.err
}

func wantContains(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not say %q:\n%s", what, w, got)
		}
	}
}

// TestInstall installs Weft into a real kube-apiserver: bad values and
// another CNI stop it before anything is applied; it creates the objects
// and, no kubelet running there, reports the agent DaemonSet as not
// ready with the reason; with statuses the test sets it names the
// failing pod, then reports ready; a re-run changes nothing, a smaller
// chart prunes; uninstall removes what install created, then finds
// nothing; the kubeconfig and context are chosen as kubectl does.
func TestInstall(t *testing.T) {
	c := k8stest.Start(t)
	ctx := context.Background()
	kc := "--kubeconfig=" + c.Kubeconfig()
	const ns = "weft-system"
	install := func(args ...string) (string, string, error) {
		return runWeft(t, append([]string{"install", kc, testEndpoints, "--wait-timeout=3s"}, args...)...)
	}
	nothingApplied := func(t *testing.T) {
		t.Helper()
		if _, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("namespace %s exists after a refused install (err %v)", ns, err)
		}
	}

	t.Run("bad values are refused before anything is applied", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want []string
		}{
			{[]string{"--cluster-id=0"}, []string{"--cluster-id", "cluster id 0", "1 to 255"}},
			{[]string{"--cluster-id=300"}, []string{"--cluster-id", "cluster id 300", "1 to 255"}},
			{[]string{"--routing=gre"}, []string{`--routing "gre"`, "tunnel or native"}},
			{[]string{"--cluster-name=Not_A_Label"}, []string{"--cluster-name", `"Not_A_Label"`, "DNS label"}},
			{[]string{"--kvstore=redis"}, []string{`--kvstore "redis"`, "etcd, consul or embedded"}},
			{[]string{"--kvstore-endpoints=10.0.0.5:2379"}, []string{"--kvstore-endpoints", "https://10.0.0.5:2379"}},
			{[]string{"--set=cluster.id=0"}, []string{"/cluster/id", "nothing was applied"}},
			{[]string{"--set=routingMode=gre"}, []string{"routingMode", "nothing was applied"}},
			{[]string{"--set=cluster.name=Not_A_Label"}, []string{"/cluster/name", "nothing was applied"}},
		} {
			_, _, err := install(tc.args...)
			if err == nil {
				t.Errorf("install %v succeeded; want a refusal", tc.args)
				continue
			}
			wantContains(t, "install "+strings.Join(tc.args, " "), err.Error(), tc.want...)
		}
		_, _, err := runWeft(t, "install", kc) // no store given
		if err == nil {
			t.Fatal("install without --kvstore-endpoints succeeded; want a refusal")
		}
		wantContains(t, "install without a store", err.Error(), "/store/endpoints", "give the store's URLs with --kvstore-endpoints", "nothing was applied")
		nothingApplied(t)
	})

	t.Run("another CNI stops it unless forced", func(t *testing.T) {
		ds := &appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Name: "calico-node", Namespace: "kube-system"},
			Spec: appsv1.DaemonSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "calico-node"}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"k8s-app": "calico-node"}},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "calico-node", Image: "calico/node"}}},
				},
			},
		}
		if _, err := c.Client.AppsV1().DaemonSets("kube-system").Create(ctx, ds, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		_, _, err := install()
		if err == nil {
			t.Fatal("install next to calico-node succeeded; want a refusal")
		}
		wantContains(t, "the refusal", err.Error(), "kube-system/calico-node (Calico)", "--force", "nothing was applied")
		nothingApplied(t)
	})

	t.Run("creates the objects and says the DaemonSet is not ready and why", func(t *testing.T) {
		out, progress, err := install("--cluster-name=east", "--cluster-id=7", "--force") // calico-node is still there
		if err := c.Client.AppsV1().DaemonSets("kube-system").Delete(ctx, "calico-node", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err == nil {
			t.Fatalf("install succeeded with no controller running; want not ready\n%s%s", out, progress)
		}
		wantContains(t, "the error", err.Error(), "weft is installed but not ready after 3s",
			"DaemonSet weft-system/weft-agent: not seen by its controller yet", "kube-controller-manager",
			"Deployment weft-system/weft-apiserver")
		wantContains(t, "the output", out, "namespace/weft-system created",
			"customresourcedefinition.apiextensions.k8s.io/ciliumnetworkpolicies.cilium.io created",
			"weft-system/daemonset.apps/weft-agent created", "weft-system/deployment.apps/weft-apiserver created")
		wantContains(t, "the progress", progress, "waiting DaemonSet weft-system/weft-agent")
		cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "weft-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wantContains(t, "agent.yaml", cm.Data["agent.yaml"], "east", "http://10.0.0.5:2379")
		ds, err := c.Client.AppsV1().DaemonSets(ns).Get(ctx, "weft-agent", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ds.Labels["weft.io/cluster"] != "east" {
			t.Errorf("DaemonSet labels %v; want weft.io/cluster=east", ds.Labels)
		}
		var managed bool
		for _, mf := range ds.ManagedFields {
			managed = managed || (mf.Manager == "weft" && mf.Operation == metav1.ManagedFieldsOperationApply)
		}
		if !managed {
			t.Errorf("the DaemonSet's fields are not applied by field manager weft: %+v", ds.ManagedFields)
		}
	})

	setReady := func(t *testing.T, available int32) {
		t.Helper()
		ds, err := c.Client.AppsV1().DaemonSets(ns).Get(ctx, "weft-agent", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: ds.Generation, DesiredNumberScheduled: 2,
			CurrentNumberScheduled: 2, UpdatedNumberScheduled: 2, NumberReady: available, NumberAvailable: available}
		if _, err := c.Client.AppsV1().DaemonSets(ns).UpdateStatus(ctx, ds, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "weft-apiserver", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}
		if _, err := c.Client.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("names the failing pod and its reason", func(t *testing.T) {
		setReady(t, 1)
		ds, err := c.Client.AppsV1().DaemonSets(ns).Get(ctx, "weft-agent", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i, node := range []string{"n1", "n2"} {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "weft-agent-" + node, Namespace: ns, Labels: ds.Spec.Selector.MatchLabels},
				Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "agent", Image: "weft"}}},
			}
			pod, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			pod.Status.Phase = corev1.PodRunning
			pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
			pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "agent", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
			if i == 1 {
				pod.Status.Conditions[0].Status = corev1.ConditionFalse
				pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "agent", RestartCount: 4, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
					Reason: "CrashLoopBackOff", Message: "back-off 1m20s restarting failed container=agent"}}}}
			}
			if _, err := c.Client.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		out, progress, err := install("--cluster-name=east", "--cluster-id=7")
		if err == nil {
			t.Fatalf("install succeeded with one of two agents crashing\n%s%s", out, progress)
		}
		wantContains(t, "the error", err.Error(), "DaemonSet weft-system/weft-agent: 1 of 2 pods ready",
			"pod weft-agent-n2 on node n2: container agent waiting: CrashLoopBackOff (back-off 1m20s restarting failed container=agent)")
		if strings.Contains(err.Error(), "weft-agent-n1") || strings.Contains(err.Error(), "Deployment") {
			t.Errorf("the error names a pod or workload that is ready:\n%v", err)
		}
		wantContains(t, "the progress", progress, "ready Deployment weft-system/weft-apiserver: 1 of 1 pods ready")
		wantContains(t, "the output of a second install", out, "weft-system/daemonset.apps/weft-agent unchanged",
			"customresourcedefinition.apiextensions.k8s.io/ciliumnetworkpolicies.cilium.io unchanged")
		if strings.Contains(out, " created") || strings.Contains(out, " configured") {
			t.Errorf("a second install with the same values changed objects:\n%s", out)
		}
	})

	t.Run("ready", func(t *testing.T) {
		setReady(t, 2)
		out, progress, err := install("--cluster-name=east", "--cluster-id=7")
		if err != nil {
			t.Fatalf("install: %v\n%s%s", err, out, progress)
		}
		wantContains(t, "the output", out, "Weft is ready", // then the chart's notes, as helm prints them
			"is installed in namespace weft-system as cluster east (id 7)", "weft clustermesh enable --context")
		wantContains(t, "the progress", progress, "ready DaemonSet weft-system/weft-agent: 2 of 2 pods ready")
	})

	t.Run("a chart that renders less prunes the rest", func(t *testing.T) {
		out, _, err := install("--cluster-name=east", "--cluster-id=7", "--set=apiserver.enabled=false", "--wait=false")
		if err != nil {
			t.Fatalf("install: %v\n%s", err, out)
		}
		wantContains(t, "the output", out, "weft-system/deployment.apps/weft-apiserver deleted (the chart no longer renders it)",
			"weft-system/daemonset.apps/weft-agent configured", "clusterrole.rbac.authorization.k8s.io/weft-apiserver-weft-system deleted")
		if _, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "weft-apiserver", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the apiserver Deployment is still there (err %v)", err)
		}
	})

	// A kubeconfig whose current context points nowhere: only --context
	// reaches the cluster.
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Clusters["nowhere"] = cfg.Clusters["weft"].DeepCopy()
	cfg.Clusters["nowhere"].Server = "https://127.0.0.1:1"
	cfg.Contexts["nowhere"] = cfg.Contexts["weft"].DeepCopy()
	cfg.Contexts["nowhere"].Cluster = "nowhere"
	cfg.CurrentContext = "nowhere"
	kubeconfig := filepath.Join(t.TempDir(), "config")
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)

	t.Run("uninstall removes what install created", func(t *testing.T) {
		if _, _, err := runWeft(t, "uninstall"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("uninstall with KUBECONFIG's current context nowhere: %v; want a connection error naming 127.0.0.1:1", err)
		}
		out, _, err := runWeft(t, "uninstall", "--context=weft")
		if err != nil {
			t.Fatalf("uninstall: %v\n%s", err, out)
		}
		wantContains(t, "the output", out, "weft-system/daemonset.apps/weft-agent deleted", "weft-system/configmap/weft-config deleted",
			"weft-system/serviceaccount/weft-agent deleted", "weft-system/configmap/weft-install deleted",
			"customresourcedefinition.apiextensions.k8s.io/ciliumnetworkpolicies.cilium.io kept")
		if _, err := c.Client.AppsV1().DaemonSets(ns).Get(ctx, "weft-agent", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the agent DaemonSet is still there after uninstall (err %v)", err)
		}
		if _, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "weft-config", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the ConfigMap weft-config is still there after uninstall (err %v)", err)
		}
		out, _, err = runWeft(t, "uninstall", "--context=weft")
		if err != nil {
			t.Fatalf("second uninstall: %v\n%s", err, out)
		}
		wantContains(t, "the second uninstall", out, "nothing to remove")
	})

	t.Run("uninstall --delete-crds removes the CRDs and their objects", func(t *testing.T) {
		crd := crdResource
		cnp := schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumnetworkpolicies"}
		// Twice: with CRDs an earlier install created, then with CRDs
		// created a moment before (the apiserver's storage for them still
		// initialising, where its own cleanup can stall for minutes).
		for _, round := range []string{"kept CRDs", "fresh CRDs"} {
			if out, _, err := runWeft(t, "install", "--context=weft", testEndpoints, "--wait=false"); err != nil {
				t.Fatalf("%s: install: %v\n%s", round, err, out)
			}
			policy := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
				"metadata": map[string]any{"name": "allow-all", "namespace": "default"},
				"spec":     map[string]any{"endpointSelector": map[string]any{}},
			}}
			if _, err := c.Dynamic.Resource(cnp).Namespace("default").Create(ctx, policy, metav1.CreateOptions{}); err != nil {
				t.Fatalf("%s: create a CiliumNetworkPolicy: %v", round, err)
			}
			out, _, err := runWeft(t, "uninstall", "--context=weft", "--delete-crds")
			if err != nil {
				t.Fatalf("%s: uninstall --delete-crds: %v\n%s", round, err, out)
			}
			wantContains(t, "the output", out, "customresourcedefinition.apiextensions.k8s.io/ciliumnetworkpolicies.cilium.io deleted")
			// It returns once the CRDs are gone.
			if _, err := c.Dynamic.Resource(crd).Get(ctx, "ciliumnetworkpolicies.cilium.io", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("%s: the CRD ciliumnetworkpolicies.cilium.io is still there after uninstall --delete-crds returned (err %v)", round, err)
			}
			if _, err := c.Dynamic.Resource(crd).Get(ctx, "serviceexports.multicluster.x-k8s.io", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("%s: the CRD serviceexports.multicluster.x-k8s.io is still there after uninstall --delete-crds returned (err %v)", round, err)
			}
		}
	})
}

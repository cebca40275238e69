// Package deploy_test checks the Helm chart (deploy/helm/weft) and the
// manifests rendered from it (deploy/manifests): they render with a real
// helm, a real kube-apiserver accepts every object (server-side dry run),
// weft-agent and weft-apiserver accept the configuration they are given,
// bad values are refused by the schema with the field named, and the
// checked-in copies are current.
package deploy_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/weftnet/weft/agent"
	"github.com/weftnet/weft/clustermesh/apiserver"
	"github.com/weftnet/weft/internal/daemonconfig"
	"github.com/weftnet/weft/internal/testgate"
	"github.com/weftnet/weft/internal/toolcache"
	"github.com/weftnet/weft/k8s/k8stest"
)

const (
	chart     = "helm/weft"
	namespace = "weft-system"
)

func tool(t *testing.T, tl toolcache.Tool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	p, err := toolcache.Ensure(ctx, tl, testWriter{t})
	if err != nil {
		testgate.Skip(t, tl.Name+" unavailable: "+err.Error())
	}
	return p
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// render runs helm template with the --set values given.
func render(t *testing.T, helm string, set ...string) (string, error) {
	t.Helper()
	args := []string{"template", "weft", chart, "--namespace", namespace}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	var out, errb bytes.Buffer
	cmd := exec.Command(helm, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	if err := cmd.Run(); err != nil {
		return errb.String(), err
	}
	return out.String(), nil
}

// variants are value sets a user would install with.
var variants = map[string][]string{
	"etcd": {"store.endpoints={http://10.0.0.5:2379}"},
	"tls":  {"store.endpoints={https://10.0.0.5:2379,https://10.0.0.6:2379}", "store.tlsSecret=etcd-client", "routingMode=native", "cluster.name=east", "cluster.id=7"},
	"embedded": {"store.kind=embedded", "store.endpoints={https://10.0.0.5:2381}", "apiserver.nodeSelector.kubernetes\\.io/hostname=node-1",
		"apiserver.k8sServiceHost=10.0.0.1"},
	"consul": {"store.kind=consul", "store.endpoints={http://10.0.0.5:8500}", "store.consulTokenSecret=consul-token", "agent.privileged=false", "agent.flows.enabled=false"},
	"global": {"store.endpoints={http://10.0.0.5:2379}", "globalCIDR=242.7.0.0/16", "serviceCIDR=10.97.0.0/16"},
	"agents-only": {"store.endpoints={http://10.0.0.5:2379}", "apiserver.enabled=false", "agent.flows.enabled=false",
		"agent.metrics.enabled=false", "agent.extraArgs={--log-level=debug}"},
}

// TestChartAppliesToKubernetes: every variant renders, and a real
// kube-apiserver accepts every rendered object in a server-side dry run
// (after the chart's CRDs are installed); the agent's and the apiserver's
// configuration files load and validate in the daemons' own loaders.
func TestChartAppliesToKubernetes(t *testing.T) {
	testgate.Short(t)
	helm := tool(t, toolcache.Helm())
	kubectl := tool(t, toolcache.Kubectl())
	c := k8stest.Start(t)
	ctx := context.Background()
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kc := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(kubectl, append([]string{"--kubeconfig", c.Kubeconfig()}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := kc("", "apply", "-f", filepath.Join(chart, "crds")); err != nil {
		t.Fatalf("install the chart's CRDs: %v\n%s", err, out)
	}
	for name, set := range variants {
		t.Run(name, func(t *testing.T) {
			lint := exec.Command(helm, "lint", chart, "--strict", "--namespace", namespace)
			for _, s := range set {
				lint.Args = append(lint.Args, "--set", s)
			}
			lint.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
			if out, err := lint.CombinedOutput(); err != nil {
				t.Fatalf("helm lint --strict: %v\n%s", err, out)
			}
			out, err := render(t, helm, set...)
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, out)
			}
			if res, err := kc(out, "apply", "--dry-run=server", "-f", "-"); err != nil {
				t.Fatalf("kube-apiserver refuses the rendered chart: %v\n%s", err, res)
			}
			sc := checkConfigs(t, out)
			// The cluster's service CIDR and global CIDR reach the apiserver.
			global, svc := "", "10.96.0.0/16"
			if name == "global" {
				global, svc = "242.7.0.0/16", "10.97.0.0/16"
			}
			if sc != nil && (sc.GlobalCIDR != global || !slices.Equal(sc.ServiceCIDRs, []string{svc})) {
				t.Errorf("apiserver.yaml: global CIDR %q, service CIDRs %q; want %q, [%s]", sc.GlobalCIDR, sc.ServiceCIDRs, global, svc)
			}
		})
	}
}

// checkConfigs loads the rendered ConfigMap's agent.yaml and apiserver.yaml
// as weft-agent and weft-apiserver would (--config), and validates them.
// It returns the apiserver's configuration (nil when there is none).
func checkConfigs(t *testing.T, manifest string) *apiserver.Config {
	t.Helper()
	var cm corev1.ConfigMap
	for _, doc := range strings.Split(manifest, "\n---\n") {
		if strings.Contains(doc, "kind: ConfigMap") {
			if err := yaml.Unmarshal([]byte(doc), &cm); err != nil {
				t.Fatal(err)
			}
		}
	}
	dir := t.TempDir()
	load := func(file string, register func(*pflag.FlagSet), validate func() error) {
		t.Helper()
		path := filepath.Join(dir, file)
		if err := os.WriteFile(path, []byte(cm.Data[file]), 0o644); err != nil {
			t.Fatal(err)
		}
		fs := pflag.NewFlagSet(file, pflag.ContinueOnError)
		daemonconfig.Register(fs)
		register(fs)
		if err := daemonconfig.LoadFile(fs, path); err != nil {
			t.Fatalf("%s: %v\n%s", file, err, cm.Data[file])
		}
		if err := validate(); err != nil {
			t.Fatalf("%s does not validate: %v\n%s", file, err, cm.Data[file])
		}
	}
	ac := agent.DefaultConfig()
	load("agent.yaml", ac.RegisterFlags, func() error {
		ac.NodeName, ac.NodeIP = "node-1", "10.0.0.11" // WEFT_NODE_NAME, WEFT_NODE_IP in the pod
		return ac.Validate()
	})
	if _, ok := cm.Data["apiserver.yaml"]; ok {
		sc := apiserver.DefaultConfig()
		load("apiserver.yaml", sc.RegisterFlags, sc.Validate)
		return &sc
	}
	return nil
}

// TestChartRefusesBadValues: values.schema.json refuses bad values before
// anything renders, naming the field.
func TestChartRefusesBadValues(t *testing.T) {
	testgate.Short(t)
	helm := tool(t, toolcache.Helm())
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{nil, "endpoints"}, // no store given
		{[]string{"store.endpoints={http://10.0.0.5:2379}", "cluster.id=300"}, "/cluster/id"},
		{[]string{"store.endpoints={http://10.0.0.5:2379}", "routingMode=gre"}, "routingMode"},
		{[]string{"store.endpoints={10.0.0.5:2379}"}, "endpoints"},
		{[]string{"store.endpoints={http://10.0.0.5:2379}", "podCIDRPool={10.100.0.0}"}, "podCIDRPool"},
		{[]string{"store.endpoints={http://10.0.0.5:2379}", "agent.tolerance=x"}, "tolerance"},
		{[]string{"store.endpoints={http://10.0.0.5:2379}", "cluster.name=Not_A_Label"}, "/cluster/name"},
		{[]string{"store.kind=embedded", "store.endpoints={https://10.0.0.5:2381}"}, "/apiserver/nodeSelector"},
		{[]string{"store.kind=embedded", "store.endpoints={http://10.0.0.5:2379}", "apiserver.nodeSelector.a=b"}, "/store/endpoints/0"},
		{[]string{"store.kind=embedded", "store.endpoints={https://10.0.0.5:2381}", "apiserver.nodeSelector.a=b", "apiserver.enabled=false"}, "/apiserver/enabled"},
		{[]string{"store.kind=redis", "store.endpoints={http://10.0.0.5:2379}"}, "/store/kind"},
		{[]string{"store.endpoints={http://10.0.0.5:2379}", "globalCIDR=242.7.0.0"}, "globalCIDR"},
		{[]string{"store.endpoints={http://10.0.0.5:2379}", "globalCIDR=yes"}, "globalCIDR"},
	} {
		out, err := render(t, helm, tc.set...)
		if err == nil {
			t.Errorf("helm template %v rendered; want a refusal naming %s", tc.set, tc.want)
			continue
		}
		if !strings.Contains(out, tc.want) {
			t.Errorf("helm template %v: the error does not name %s:\n%s", tc.set, tc.want, out)
		}
	}
}

// TestCRDsCurrent: the chart ships the CRDs weft-apiserver reads.
func TestCRDsCurrent(t *testing.T) {
	want, err := filepath.Glob("../k8s/crds/*.yaml")
	if err != nil || len(want) == 0 {
		t.Fatalf("k8s/crds: %v", err)
	}
	for _, f := range want {
		a, _ := os.ReadFile(f)
		b, err := os.ReadFile(filepath.Join(chart, "crds", filepath.Base(f)))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs from k8s/crds (copy it: cp k8s/crds/*.yaml deploy/helm/weft/crds/)", filepath.Join(chart, "crds", filepath.Base(f)))
		}
	}
}

// TestManifestsCurrent: deploy/manifests/weft.yaml is what `make manifests`
// renders now.
func TestManifestsCurrent(t *testing.T) {
	testgate.Short(t)
	helm := tool(t, toolcache.Helm())
	cmd := exec.Command("bash", "manifests/render.sh", helm)
	want, err := cmd.Output()
	if err != nil {
		t.Fatalf("render manifests: %v", err)
	}
	have, _ := os.ReadFile("manifests/weft.yaml")
	if !bytes.Equal(have, want) {
		t.Errorf("deploy/manifests/weft.yaml is stale: run `make manifests` and commit it")
	}
}

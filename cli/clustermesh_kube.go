package cli

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/weftnet/weft/clustermesh"
)

// Clustermesh of clusters Weft was installed on with its Helm chart
// (`weft install` or helm): everything is found through the kube context.
// The chart's weft-apiserver mounts the clustermesh Secret, and its
// Service weft-clustermesh exposes the read-only store (port "remote") and
// the admin API (port "admin", mutual TLS with the Secret's admin
// certificate) that `connect` uses.
const (
	meshConfigMap      = "weft-config"
	meshDeployment     = "weft-apiserver"
	meshService        = "weft-clustermesh"
	meshSecretVolume   = "clustermesh-secret"
	meshSecretHashNote = "weft.io/clustermesh-secret-hash"
)

// kubeCluster is a cluster reached through its kube context.
type kubeCluster struct {
	flags  kubeFlags
	k      *kube
	name   string
	id     uint32
	secret string // the clustermesh Secret the apiserver mounts
	// storeHosts are where agents reach an embedded store (the apiserver's
	// node): its serving certificate must name them.
	storeHosts []string
}

// where names the context for messages.
func (f kubeFlags) where() string {
	if f.context != "" {
		return "context " + f.context
	}
	return "the current kube context"
}

// flag is the --context flag to repeat in a hint.
func (f kubeFlags) flag() string {
	if f.context != "" {
		return " --context " + f.context
	}
	return ""
}

// openKubeCluster finds the Weft install of f's cluster: its name and id
// from the chart's ConfigMap, the Secret from the apiserver Deployment.
func openKubeCluster(ctx context.Context, f kubeFlags) (*kubeCluster, error) {
	k, err := f.connect()
	if err != nil {
		return nil, err
	}
	ns := f.namespace
	cm, err := k.client.CoreV1().ConfigMaps(ns).Get(ctx, meshConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%s: Weft is not installed in namespace %s (no ConfigMap %s); run `weft install%s` first, or give --namespace", f.where(), ns, meshConfigMap, f.flag())
	}
	if err != nil {
		return nil, fmt.Errorf("%s: read ConfigMap %s/%s: %w", f.where(), ns, meshConfigMap, err)
	}
	raw, ok := cm.Data["apiserver.yaml"]
	if !ok {
		return nil, fmt.Errorf("%s: the install in %s runs no weft-apiserver (apiserver.enabled is false); clustermesh needs it: weft install%s --set apiserver.enabled=true", f.where(), ns, f.flag())
	}
	var cfg struct {
		Name     string `json:"cluster-name"`
		ID       uint32 `json:"cluster-id"`
		Embedded bool   `json:"embedded-store"`
	}
	if err := yaml.Unmarshal([]byte(raw), &cfg); err != nil || cfg.Name == "" {
		return nil, fmt.Errorf("%s: ConfigMap %s/%s: apiserver.yaml names no cluster (%v)", f.where(), ns, meshConfigMap, err)
	}
	c := &kubeCluster{flags: f, k: k, name: cfg.Name, id: cfg.ID, secret: "weft-clustermesh"}
	if cfg.Embedded {
		var agent struct {
			Endpoints []string `json:"kvstore-endpoints"`
		}
		if err := yaml.Unmarshal([]byte(cm.Data["agent.yaml"]), &agent); err != nil {
			return nil, fmt.Errorf("%s: ConfigMap %s/%s: agent.yaml: %w", f.where(), ns, meshConfigMap, err)
		}
		c.storeHosts = listenHosts(agent.Endpoints)
	}
	dep, err := k.client.AppsV1().Deployments(ns).Get(ctx, meshDeployment, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: read Deployment %s/%s: %w", f.where(), ns, meshDeployment, err)
	}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Name == meshSecretVolume && v.Secret != nil {
			c.secret = v.Secret.SecretName
		}
	}
	return c, nil
}

// serviceAddrs are the addresses the apiserver's Service is reached at from
// outside the cluster, and the port of each of its named ports there.
type serviceAddrs struct {
	hosts []string
	ports map[string]int32
}

func (a serviceAddrs) endpoints(port, scheme string) []string {
	p, ok := a.ports[port]
	if !ok {
		return nil
	}
	var out []string
	for _, h := range a.hosts {
		out = append(out, scheme+net.JoinHostPort(h, strconv.Itoa(int(p))))
	}
	return out
}

// addrs reads the Service weft-clustermesh: a LoadBalancer's ingress
// addresses (waited for, at most timeout), a NodePort's node addresses, or
// a ClusterIP (reachable only from networks that route it).
func (c *kubeCluster) addrs(ctx context.Context, timeout time.Duration, progress io.Writer) (serviceAddrs, error) {
	ns := c.flags.namespace
	deadline := time.Now().Add(timeout)
	said := false
	for {
		svc, err := c.k.client.CoreV1().Services(ns).Get(ctx, meshService, metav1.GetOptions{})
		if err != nil {
			return serviceAddrs{}, fmt.Errorf("%s: read Service %s/%s: %w", c.flags.where(), ns, meshService, err)
		}
		a := serviceAddrs{ports: map[string]int32{}}
		for _, p := range svc.Spec.Ports {
			a.ports[p.Name] = p.Port
		}
		switch svc.Spec.Type {
		case corev1.ServiceTypeLoadBalancer:
			for _, in := range svc.Status.LoadBalancer.Ingress {
				a.hosts = append(a.hosts, cmp.Or(in.IP, in.Hostname))
			}
		case corev1.ServiceTypeNodePort:
			for _, p := range svc.Spec.Ports {
				a.ports[p.Name] = p.NodePort
			}
			nodes, err := c.k.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				return serviceAddrs{}, fmt.Errorf("%s: list nodes for NodePort Service %s/%s: %w", c.flags.where(), ns, meshService, err)
			}
			for _, n := range nodes.Items {
				for _, ad := range n.Status.Addresses {
					if ad.Type == corev1.NodeInternalIP || ad.Type == corev1.NodeExternalIP {
						a.hosts = append(a.hosts, ad.Address)
					}
				}
			}
		default:
			a.hosts = append(a.hosts, svc.Spec.ClusterIPs...)
		}
		a.hosts = slices.DeleteFunc(a.hosts, func(h string) bool { return h == "" || h == corev1.ClusterIPNone })
		if _, ok := a.ports["admin"]; !ok {
			return serviceAddrs{}, fmt.Errorf("%s: Service %s/%s has no port named admin: the install predates clustermesh by context; run `weft install%s` again", c.flags.where(), ns, meshService, c.flags.flag())
		}
		if len(a.hosts) > 0 {
			return a, nil
		}
		if time.Now().After(deadline) {
			return serviceAddrs{}, fmt.Errorf("%s: Service %s/%s (type %s) has no address after %s: does the cluster assign LoadBalancer addresses? Else install with --set apiserver.service.type=NodePort", c.flags.where(), ns, meshService, svc.Spec.Type, timeout)
		}
		if !said {
			fmt.Fprintf(progress, "waiting for an address of Service %s/%s (type %s)\n", ns, meshService, svc.Spec.Type)
			said = true
		}
		select {
		case <-ctx.Done():
			return serviceAddrs{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// readSecret writes the clustermesh Secret's files into dir; found is
// false when there is no Secret.
func (c *kubeCluster) readSecret(ctx context.Context, dir string) (data map[string][]byte, found bool, err error) {
	s, err := c.k.client.CoreV1().Secrets(c.flags.namespace).Get(ctx, c.secret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: read Secret %s/%s: %w", c.flags.where(), c.flags.namespace, c.secret, err)
	}
	for name, b := range s.Data {
		if name != filepath.Base(name) || strings.HasPrefix(name, ".") {
			return nil, false, fmt.Errorf("%s: Secret %s/%s has a key %q that is not a file name", c.flags.where(), c.flags.namespace, c.secret, name)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".key") {
			mode = 0o600
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, mode); err != nil {
			return nil, false, err
		}
	}
	return s.Data, true, nil
}

// target is the admin API of the cluster's apiserver, reached through its
// Service with the Secret's admin certificate (copied into a private
// temporary directory that cleanup removes).
func (c *kubeCluster) target(ctx context.Context, timeout time.Duration, progress io.Writer) (t clustermesh.Target, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "weft-clustermesh-")
	if err != nil {
		return t, nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	_, found, err := c.readSecret(ctx, dir)
	if err == nil && !found {
		err = fmt.Errorf("%s: clustermesh is not enabled for cluster %s (no Secret %s/%s); run `weft clustermesh enable%s` first", c.flags.where(), c.name, c.flags.namespace, c.secret, c.flags.flag())
	}
	var a serviceAddrs
	if err == nil {
		a, err = c.addrs(ctx, timeout, progress)
	}
	if err != nil {
		cleanup()
		return t, nil, err
	}
	return clustermesh.Target{Name: c.name, Dir: clustermesh.Dir(dir), Admin: a.endpoints("admin", "")[0],
		Endpoints: a.endpoints("remote", "https://")}, cleanup, nil
}

// enable creates (or completes, keeping the CA) the cluster's clustermesh
// Secret, restarts the apiserver when the Secret changed, and waits until
// its admin API answers.
func (c *kubeCluster) enable(ctx context.Context, extraHosts []string, timeout time.Duration, step func(string, ...any), progress io.Writer) error {
	a, err := c.addrs(ctx, timeout, progress)
	if err != nil {
		return err
	}
	data, st, err := c.ensureSecret(ctx, a, extraHosts, step)
	if err != nil {
		return err
	}
	if st == secretUpdated {
		if err := c.restart(ctx, dataHash(data), step); err != nil {
			return err
		}
	}
	if err := waitReady(ctx, c.k.client, []workload{{kind: "Deployment", namespace: c.flags.namespace, name: meshDeployment}}, timeout, time.Second, progress); err != nil {
		return err
	}
	t, cleanup, err := c.target(ctx, timeout, progress)
	if err != nil {
		return err
	}
	defer cleanup()
	return waitAdmin(ctx, t, timeout, step)
}

type secretState int

const (
	secretUnchanged secretState = iota
	secretCreated
	secretUpdated
)

// ensureSecret creates the clustermesh Secret, or completes and renews
// it keeping the CA, for the Service's addresses a; it returns the
// Secret's data and what it did.
func (c *kubeCluster) ensureSecret(ctx context.Context, a serviceAddrs, extraHosts []string, step func(string, ...any)) (map[string][]byte, secretState, error) {
	ns := c.flags.namespace
	dir, err := os.MkdirTemp("", "weft-clustermesh-")
	if err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(dir)
	old, found, err := c.readSecret(ctx, dir)
	if err != nil {
		return nil, 0, err
	}
	hosts := append([]string{meshService + "." + ns + ".svc", meshService + "." + ns + ".svc.cluster.local"}, a.hosts...)
	hosts = append(append(hosts, c.storeHosts...), extraHosts...)
	err = clustermesh.Enable(clustermesh.EnableOptions{
		Dir: clustermesh.Dir(dir), Cluster: c.name, ID: c.id, Hosts: hosts, Step: quietPaths(step, dir),
		Config: map[string]any{"admin-listen": a.endpoints("admin", "")},
	})
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", c.flags.where(), err)
	}
	// The pod runs with the chart's apiserver.yaml; the Secret's
	// apiserver.json only says whose directory it is (Enable refuses
	// another cluster's), without the temporary path Enable wrote.
	owner, _ := json.MarshalIndent(map[string]any{"cluster-name": c.name, "cluster-id": c.id, "admin-listen": a.endpoints("admin", "")}, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, clustermesh.ConfigFile), append(owner, '\n'), 0o644); err != nil {
		return nil, 0, err
	}
	data := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			if data[e.Name()], err = os.ReadFile(filepath.Join(dir, e.Name())); err != nil {
				return nil, 0, err
			}
		}
	}
	secrets := c.k.client.CoreV1().Secrets(ns)
	switch {
	case found && maps.EqualFunc(old, data, bytes.Equal):
		step("Secret %s/%s: unchanged", ns, c.secret)
		return data, secretUnchanged, nil
	case found:
		s, err := secrets.Get(ctx, c.secret, metav1.GetOptions{})
		if err != nil {
			return nil, 0, fmt.Errorf("%s: read Secret %s/%s: %w", c.flags.where(), ns, c.secret, err)
		}
		s.Data = data
		if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
			return nil, 0, fmt.Errorf("%s: update Secret %s/%s: %w", c.flags.where(), ns, c.secret, err)
		}
		step("Secret %s/%s: updated", ns, c.secret)
		return data, secretUpdated, nil
	default:
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: c.secret, Namespace: ns,
			Labels: map[string]string{"app.kubernetes.io/part-of": "weft"}}, Data: data}
		if _, err := secrets.Create(ctx, s, metav1.CreateOptions{FieldManager: fieldManager}); err != nil {
			return nil, 0, fmt.Errorf("%s: create Secret %s/%s: %w", c.flags.where(), ns, c.secret, err)
		}
		step("Secret %s/%s: created (cluster %s, id %d; serving %s)", ns, c.secret, c.name, c.id, strings.Join(hosts, ", "))
	}
	return data, secretCreated, nil
}

// restart records the Secret's hash in the apiserver's pod template, so
// that the changed Secret restarts it (it copies the Secret at start).
func (c *kubeCluster) restart(ctx context.Context, hash string, step func(string, ...any)) error {
	deps := c.k.client.AppsV1().Deployments(c.flags.namespace)
	dep, err := deps.Get(ctx, meshDeployment, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("%s: read Deployment %s/%s: %w", c.flags.where(), c.flags.namespace, meshDeployment, err)
	}
	if dep.Spec.Template.Annotations[meshSecretHashNote] == hash {
		return nil
	}
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, meshSecretHashNote, hash)
	if _, err := deps.Patch(ctx, meshDeployment, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "weft-clustermesh"}); err != nil {
		return fmt.Errorf("%s: restart Deployment %s/%s: %w", c.flags.where(), c.flags.namespace, meshDeployment, err)
	}
	step("Deployment %s/%s: restarted to load the changed Secret", c.flags.namespace, meshDeployment)
	return nil
}

// waitAdmin polls the admin API until it answers.
func waitAdmin(ctx context.Context, t clustermesh.Target, timeout time.Duration, step func(string, ...any)) error {
	deadline := time.Now().Add(timeout)
	for {
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := clustermesh.Status(actx, t)
		cancel()
		if err == nil {
			step("apiserver of %s: answers at %s; remote clusters read it at %s", t.Name, t.Admin, strings.Join(t.Endpoints, ","))
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("apiserver of %s: its admin API at %s does not answer after %s: %w", t.Name, t.Admin, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func dataHash(data map[string][]byte) string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s\x00%d\x00", k, len(data[k]))
		h.Write(data[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// quietPaths drops Enable's steps about files of the temporary directory
// (they end up in the Secret, which the next step reports).
func quietPaths(step func(string, ...any), dir string) func(string, ...any) {
	return func(format string, args ...any) {
		for _, a := range args {
			if s, ok := a.(string); ok && strings.HasPrefix(s, dir) {
				return
			}
		}
		step(format, args...)
	}
}

// kubeMode reports whether the clustermesh command was given a kube
// context or kubeconfig: the cluster is then one Weft was installed on.
func (m *meshOptions) kubeMode(cmd *cobra.Command) bool {
	f := cmd.Flags()
	return f.Changed("context") || f.Changed("kubeconfig")
}

// kubeTargets opens the clusters of the given kube flags (in order) as
// targets; cleanup removes their temporary credentials.
func (m *meshOptions) kubeTargets(cmd *cobra.Command, flags ...kubeFlags) ([]clustermesh.Target, func(), error) {
	var (
		out      []clustermesh.Target
		cleanups []func()
	)
	cleanup := func() {
		for _, c := range cleanups {
			c()
		}
	}
	for _, f := range flags {
		c, err := openKubeCluster(cmd.Context(), f)
		if err == nil {
			var t clustermesh.Target
			var done func()
			t, done, err = c.target(cmd.Context(), m.waitTimeout, cmd.ErrOrStderr())
			if err == nil {
				cleanups = append(cleanups, done)
				out = append(out, t)
				continue
			}
		}
		cleanup()
		return nil, nil, err
	}
	if len(out) == 2 && out[0].Name == out[1].Name {
		cleanup()
		return nil, nil, fmt.Errorf("%s and %s are the same cluster (%s); give the context of another cluster", flags[0].where(), flags[1].where(), out[0].Name)
	}
	return out, cleanup, nil
}

var errNoDestination = errors.New("give the other cluster with --destination-context (and --destination-kubeconfig when it is in another kubeconfig)")

// installMeshSecret gives a new install the clustermesh Secret its
// apiserver waits for: the cluster's CA and certificates for the Service's
// DNS names and whatever address it has yet (`weft clustermesh enable`
// adds a LoadBalancer's address once it has one). An existing Secret is
// kept as it is: it holds the cluster's CA.
func installMeshSecret(ctx context.Context, f kubeFlags, out io.Writer) error {
	c, err := openKubeCluster(ctx, f)
	if err != nil {
		return err
	}
	ns := f.namespace
	r := ref{APIVersion: "v1", Kind: "Secret", Namespace: ns, Name: c.secret}
	if _, err := c.k.client.CoreV1().Secrets(ns).Get(ctx, c.secret, metav1.GetOptions{}); err == nil {
		fmt.Fprintf(out, "%s kept (the cluster's CA)\n", r)
		return nil
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("read Secret %s/%s: %w", ns, c.secret, err)
	}
	a, err := c.addrs(ctx, 0, io.Discard)
	if err != nil {
		a = serviceAddrs{} // no address yet: the DNS names only
	}
	if _, _, err := c.ensureSecret(ctx, a, nil, func(string, ...any) {}); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s created (the cluster's CA and certificates; `weft clustermesh enable%s` adds the Service's address for other clusters)\n", r, f.flag())
	return nil
}

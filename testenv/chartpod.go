package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// The apiserver Weft's Helm chart installs, in an environment brought up
// with Spec.ChartAPIServer (docs/testenv.md). testenv has no container
// runtime and no controllers, so run-kube stands in for them for the
// chart's Deployment weft-apiserver: it runs the Deployment's pod (its init
// containers, then its container) as processes in a network namespace of
// its own on the underlay (address 192.168.0.2<c>), each container in a
// private mount namespace chrooted into a root that holds the
// environment's binaries at /usr/local/bin, the host's libraries, the
// pod's ConfigMap, Secret, emptyDir and hostPath volumes at their mount
// paths (a hostPath is a directory of the pod's, kept across restarts) and
// a service-account token at /var/run/secrets/kubernetes.io/serviceaccount,
// as the user of its securityContext. hostNetwork is not honoured: the pod
// keeps its own namespace and address. It writes the Deployment's
// status from the container's TCP readiness probe, and gives the chart's
// LoadBalancer Services the pod's address (their ports equal the
// container ports in the chart).

// chartAPIServerLabel selects the chart's apiserver Deployment.
const chartAPIServerLabel = "app.kubernetes.io/name=weft-apiserver"

// ChartPodIP is the address of cluster c's chart apiserver pod.
func ChartPodIP(c int) netip.Addr {
	return netip.AddrFrom4([4]byte{192, 168, 0, byte(20 + c)})
}

// chartPod runs one cluster's chart apiserver pod.
type chartPod struct {
	env     *Env
	cluster Cluster
	cs      kubernetes.Interface
	caPEM   []byte
	log     *slog.Logger

	hash    string // of the pod template the process runs
	started time.Time
}

func (p *chartPod) dir() string     { return chartPodDir(p.env, p.cluster.Name) }
func (p *chartPod) netns() string   { return "weft-" + p.env.Name + "-" + p.cluster.Name + "-apiserver" }
func (p *chartPod) pidFile() string { return filepath.Join(p.dir(), "pod.pid") }

// logFile is where the pod's containers write.
func (p *chartPod) logFile() string { return p.env.ChartPodLog(p.cluster.Name) }

func chartPodDir(e *Env, cluster string) string {
	return filepath.Join(e.kubeDir(cluster), "apiserver-pod")
}

// ChartPodLog is the log of cluster's chart apiserver pod (its init
// containers' and its container's output, every start appended).
func (e *Env) ChartPodLog(cluster string) string {
	return filepath.Join(chartPodDir(e, cluster), "pod.log")
}

// run reconciles every second until ctx ends, then stops the pod.
func (p *chartPod) run(ctx context.Context) {
	p.stop() // one left by an earlier run-kube
	for {
		if err := p.reconcile(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("chart apiserver pod", "cluster", p.cluster.Name, "err", err)
		}
		select {
		case <-ctx.Done():
			p.stop()
			return
		case <-time.After(time.Second):
		}
	}
}

func (p *chartPod) reconcile(ctx context.Context) error {
	deps, err := p.cs.AppsV1().Deployments("").List(ctx, metav1.ListOptions{LabelSelector: chartAPIServerLabel})
	if err != nil {
		return err
	}
	if len(deps.Items) == 0 {
		p.stop()
		return nil
	}
	dep := &deps.Items[0]
	raw, _ := json.Marshal(dep.Spec.Template)
	sum := sha256.Sum256(raw)
	hash := hex.EncodeToString(sum[:8])
	pid := readPID(p.pidFile())
	running := alive(pid)
	if running && hash != p.hash {
		p.log.Info("chart apiserver pod: template changed, restarting", "cluster", p.cluster.Name)
		p.stop()
		running = false
	}
	problem := ""
	if !running && time.Since(p.started) > 5*time.Second { // a crashed pod restarts, at most every 5 s
		if err := p.start(ctx, dep); err != nil {
			problem = err.Error()
		} else {
			p.hash = hash
		}
	}
	ready := problem == "" && alive(readPID(p.pidFile())) && p.probe(dep)
	if err := p.writeStatus(ctx, dep, ready, problem); err != nil {
		return err
	}
	return p.exposeServices(ctx, dep)
}

// probe runs the container's TCP readiness probe from the underlay.
func (p *chartPod) probe(dep *appsv1.Deployment) bool {
	c := dep.Spec.Template.Spec.Containers[0]
	if c.ReadinessProbe == nil || c.ReadinessProbe.TCPSocket == nil {
		return true
	}
	port := c.ReadinessProbe.TCPSocket.Port.IntValue()
	for _, cp := range c.Ports {
		if cp.Name == c.ReadinessProbe.TCPSocket.Port.String() {
			port = int(cp.ContainerPort)
		}
	}
	err := InNetNS(p.env.Underlay, func() error {
		conn, err := net.DialTimeout("tcp4", net.JoinHostPort(ChartPodIP(p.cluster.ID).String(), strconv.Itoa(port)), time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	})
	return err == nil
}

func (p *chartPod) writeStatus(ctx context.Context, dep *appsv1.Deployment, ready bool, problem string) error {
	st := appsv1.DeploymentStatus{ObservedGeneration: dep.Generation, Replicas: 1, UpdatedReplicas: 1}
	cond := appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse,
		Reason: "TestenvKubelet", Message: "the apiserver pod is not ready yet (log " + p.logFile() + ")"}
	if problem != "" {
		cond.Message = problem
	}
	if ready {
		st.ReadyReplicas, st.AvailableReplicas = 1, 1
		cond.Status, cond.Message = corev1.ConditionTrue, "the apiserver pod runs"
	} else {
		st.UnavailableReplicas = 1
	}
	for _, c := range dep.Status.Conditions {
		if c.Type == cond.Type && c.Status == cond.Status && c.Message == cond.Message {
			cond.LastTransitionTime = c.LastTransitionTime
		}
	}
	if cond.LastTransitionTime.IsZero() {
		cond.LastTransitionTime = metav1.Now()
	}
	cond.LastUpdateTime = cond.LastTransitionTime
	st.Conditions = []appsv1.DeploymentCondition{cond}
	have, _ := json.Marshal(dep.Status)
	want, _ := json.Marshal(st)
	if bytes.Equal(have, want) {
		return nil
	}
	dep = dep.DeepCopy()
	dep.Status = st
	_, err := p.cs.AppsV1().Deployments(dep.Namespace).UpdateStatus(ctx, dep, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return nil // the next round writes it
	}
	return err
}

// exposeServices gives the LoadBalancer Services selecting the pod its
// address, as a load-balancer controller would.
func (p *chartPod) exposeServices(ctx context.Context, dep *appsv1.Deployment) error {
	svcs, err := p.cs.CoreV1().Services(dep.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	ip := ChartPodIP(p.cluster.ID).String()
	for _, s := range svcs.Items {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer || len(s.Spec.Selector) == 0 ||
			!labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(dep.Spec.Template.Labels)) {
			continue
		}
		if in := s.Status.LoadBalancer.Ingress; len(in) == 1 && in[0].IP == ip {
			continue
		}
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		if _, err := p.cs.CoreV1().Services(s.Namespace).UpdateStatus(ctx, &s, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
			return err
		}
		p.log.Info("chart apiserver pod: LoadBalancer address", "service", s.Namespace+"/"+s.Name, "ip", ip)
	}
	return nil
}

// stop ends the pod's processes (SIGTERM, then SIGKILL after 10 s).
func (p *chartPod) stop() {
	pid := readPID(p.pidFile())
	if !alive(pid) {
		return
	}
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	if !waitGone([]int{pid}, 10*time.Second) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		waitGone([]int{pid}, 5*time.Second)
	}
	os.Remove(p.pidFile())
}

// start prepares the pod's roots and volumes and starts its containers.
func (p *chartPod) start(ctx context.Context, dep *appsv1.Deployment) error {
	p.started = time.Now()
	spec := dep.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		return fmt.Errorf("testenv runs pods of one container; %s/%s has %d", dep.Namespace, dep.Name, len(spec.Containers))
	}
	if err := p.ensureNetwork(); err != nil {
		return err
	}
	dir := p.dir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(dir, "root")); err != nil {
		return err
	}
	vols, err := p.volumes(ctx, dep)
	if err != nil {
		return err
	}
	uid, gid := 0, 0
	if sc := spec.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = int(*sc.RunAsUser)
		}
		if sc.RunAsGroup != nil {
			gid = int(*sc.RunAsGroup)
		} else if sc.FSGroup != nil {
			gid = int(*sc.FSGroup)
		}
	}
	script := []string{"set -eu"}
	containers := append(slices.Clone(spec.InitContainers), spec.Containers...)
	for i, c := range containers {
		lines, err := p.container(ctx, dep, c, vols, uid, gid, i == len(containers)-1)
		if err != nil {
			return fmt.Errorf("container %s: %w", c.Name, err)
		}
		script = append(script, lines...)
	}
	scriptFile := filepath.Join(dir, "pod.sh")
	if err := os.WriteFile(scriptFile, []byte(strings.Join(script, "\n")+"\n"), 0o755); err != nil {
		return err
	}
	pid, err := p.env.startDetached(process{
		args:  []string{"unshare", "--mount", "--propagation", "private", "--", "sh", scriptFile},
		netns: p.netns(), log: p.logFile(), pidFile: p.pidFile(),
	})
	if err != nil {
		return err
	}
	p.log.Info("chart apiserver pod: started", "cluster", p.cluster.Name, "deployment", dep.Namespace+"/"+dep.Name, "pid", pid, "log", p.logFile())
	return nil
}

// ensureNetwork creates the pod's namespace on the underlay once.
func (p *chartPod) ensureNetwork() error {
	if _, err := os.Stat(NetNSPath(p.netns())); err == nil {
		return nil
	}
	if err := CreateNetNS(p.netns()); err != nil {
		return err
	}
	if err := p.env.plugUnderlay(p.netns(), p.cluster.Name+"-apisrv", ChartPodIP(p.cluster.ID)); err != nil {
		_ = DeleteNetNS(p.netns())
		return err
	}
	return nil
}

// volumes materializes the pod's volumes under the pod directory.
func (p *chartPod) volumes(ctx context.Context, dep *appsv1.Deployment) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		d := filepath.Join(p.dir(), "volumes", v.Name)
		var files map[string][]byte
		switch {
		case v.HostPath != nil:
			// The node's directory: kept across restarts of the pod, as
			// on a node, and created root-owned like DirectoryOrCreate.
			d = filepath.Join(p.dir(), "hostpath", strings.ReplaceAll(strings.Trim(path.Clean(v.HostPath.Path), "/"), "/", "_"))
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, err
			}
			out[v.Name] = d
			continue
		case v.EmptyDir != nil:
			// Every start is a new pod here: its emptyDir starts empty.
			if err := os.RemoveAll(d); err != nil {
				return nil, err
			}
			if err := os.MkdirAll(d, 0o777); err != nil {
				return nil, err
			}
			if err := os.Chmod(d, 0o777); err != nil {
				return nil, err
			}
			out[v.Name] = d
			continue
		case v.ConfigMap != nil:
			cm, err := p.cs.CoreV1().ConfigMaps(dep.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("volume %s: ConfigMap %s: %w", v.Name, v.ConfigMap.Name, err)
			}
			files = map[string][]byte{}
			for k, s := range cm.Data {
				files[k] = []byte(s)
			}
		case v.Secret != nil:
			s, err := p.cs.CoreV1().Secrets(dep.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("volume %s: Secret %s: %w", v.Name, v.Secret.SecretName, err)
			}
			files = s.Data
		default:
			return nil, fmt.Errorf("volume %s: testenv mounts ConfigMap, Secret, emptyDir and hostPath volumes only", v.Name)
		}
		if err := os.RemoveAll(d); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		for k, b := range files {
			if k != filepath.Base(k) {
				return nil, fmt.Errorf("volume %s: key %q is not a file name", v.Name, k)
			}
			if err := os.WriteFile(filepath.Join(d, k), b, 0o644); err != nil {
				return nil, err
			}
		}
		out[v.Name] = d
	}
	return out, nil
}

// container prepares c's root and returns the script lines that mount its
// volumes and run it (exec for the last container).
func (p *chartPod) container(ctx context.Context, dep *appsv1.Deployment, c corev1.Container, vols map[string]string, uid, gid int, last bool) ([]string, error) {
	root := filepath.Join(p.dir(), "root", c.Name)
	for _, d := range []string{"usr/local/bin", "usr/lib", "usr/lib64", "etc", "proc", "dev", "var/run/secrets/kubernetes.io/serviceaccount"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o777); err != nil {
		return nil, err
	}
	_ = os.Chmod(filepath.Join(root, "tmp"), 0o1777)
	for _, l := range [][2]string{{"usr/lib", "lib"}, {"usr/lib64", "lib64"}} {
		if err := os.Symlink(l[0], filepath.Join(root, l[1])); err != nil {
			return nil, err
		}
	}
	hosts := "127.0.0.1 localhost\n" + ChartPodIP(p.cluster.ID).String() + " " + dep.Name + "\n"
	if err := os.WriteFile(filepath.Join(root, "etc/hosts"), []byte(hosts), 0o644); err != nil {
		return nil, err
	}
	q := shellQuote
	lines := []string{"# container " + c.Name,
		"mount --rbind /dev " + q(root+"/dev"),
		"mount -t proc proc " + q(root+"/proc")}
	for _, lib := range []string{"/usr/lib", "/usr/lib64"} {
		if _, err := os.Stat(lib); err == nil {
			lines = append(lines, "mount --bind -o ro "+q(lib)+" "+q(root+lib))
		}
	}
	bin := filepath.Dir(p.env.Bin.Agent)
	for _, b := range []string{"weft", "weft-apiserver"} {
		target := filepath.Join(root, "usr/local/bin", b)
		if err := os.WriteFile(target, nil, 0o755); err != nil {
			return nil, err
		}
		lines = append(lines, "mount --bind "+q(filepath.Join(bin, b))+" "+q(target))
	}
	sa := dep.Spec.Template.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tok, err := p.cs.CoreV1().ServiceAccounts(dep.Namespace).CreateToken(ctx, sa, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(24 * 3600))}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token of ServiceAccount %s/%s: %w", dep.Namespace, sa, err)
	}
	for name, data := range map[string][]byte{"token": []byte(tok.Status.Token), "ca.crt": p.caPEM, "namespace": []byte(dep.Namespace)} {
		if err := os.WriteFile(filepath.Join(root, "var/run/secrets/kubernetes.io/serviceaccount", name), data, 0o644); err != nil {
			return nil, err
		}
	}
	for _, m := range c.VolumeMounts {
		src, ok := vols[m.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMount %s: no such volume", m.Name)
		}
		target := filepath.Join(root, path.Clean("/"+m.MountPath))
		if err := os.MkdirAll(target, 0o755); err != nil {
			return nil, err
		}
		lines = append(lines, "mount --bind "+q(src)+" "+q(target))
		if m.ReadOnly {
			lines = append(lines, "mount -o remount,bind,ro "+q(target))
		}
	}
	env, err := p.containerEnv(dep, c)
	if err != nil {
		return nil, err
	}
	argv := append(slices.Clone(c.Command), c.Args...)
	if len(argv) == 0 {
		return nil, errors.New("no command: testenv has no image to take an entrypoint from")
	}
	chroot, err := exec.LookPath("chroot")
	if err != nil {
		return nil, fmt.Errorf("chroot (coreutils) runs the containers: %w", err)
	}
	if sc := c.SecurityContext; sc != nil { // the container's user wins over the pod's
		if sc.RunAsUser != nil {
			uid = int(*sc.RunAsUser)
		}
		if sc.RunAsGroup != nil {
			gid = int(*sc.RunAsGroup)
		}
	}
	run := "env -i"
	for _, kv := range env {
		run += " " + q(kv)
	}
	run += fmt.Sprintf(" %s --userspec=%d:%d %s", q(chroot), uid, gid, q(root))
	for _, a := range argv {
		run += " " + q(a)
	}
	if last {
		run = "exec " + run
	}
	return append(lines, run), nil
}

// containerEnv resolves c's environment as a kubelet would, for the
// sources the chart uses.
func (p *chartPod) containerEnv(dep *appsv1.Deployment, c corev1.Container) ([]string, error) {
	env := []string{
		"PATH=/usr/local/bin", MarkerVar + "=" + p.env.Name,
		"KUBERNETES_SERVICE_HOST=" + storeIP(p.cluster.ID).String(), "KUBERNETES_SERVICE_PORT=" + strconv.Itoa(kubePort),
	}
	for _, v := range c.Env {
		val := v.Value
		if f := v.ValueFrom; f != nil {
			switch {
			case f.FieldRef != nil && f.FieldRef.FieldPath == "metadata.namespace":
				val = dep.Namespace
			case f.FieldRef != nil && f.FieldRef.FieldPath == "metadata.name":
				val = dep.Name + "-testenv"
			case f.FieldRef != nil && f.FieldRef.FieldPath == "status.podIP":
				val = ChartPodIP(p.cluster.ID).String()
			default:
				return nil, fmt.Errorf("env %s: testenv resolves fieldRef metadata.namespace, metadata.name and status.podIP only", v.Name)
			}
		}
		env = append(env, v.Name+"="+val)
	}
	return env, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

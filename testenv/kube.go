package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/weftnet/weft/internal/toolcache"
)

// Kubernetes mode of an environment (docs/testenv.md): each cluster gets a
// real kube-apiserver on its own etcd, run with testenv's kubelet by one
// `weft testenv run-kube` process in the host namespace. The API listens
// on a host loopback port (Cluster.Kubeconfig, for kubectl and tests) and,
// through a forwarder, on https://192.168.0.1<c>:6443 in the underlay
// namespace (Cluster.UnderlayKubeconfig, for the cluster's weft-apiserver).
const kubePort = 6443

// kubeReadyFile is written by run-kube once the API serves, the CRDs are
// installed and the kubelet runs; it holds the run's pid.
const kubeReadyFile = "ready"

// kubeDir is cluster c's Kubernetes directory.
func (e *Env) kubeDir(c string) string { return filepath.Join(e.Dir, "kube-"+c) }

// setKubeLayout fills in the Kubernetes paths of every cluster.
func (e *Env) setKubeLayout() {
	for i := range e.Clusters {
		c := &e.Clusters[i]
		d := e.kubeDir(c.Name)
		c.Kubeconfig = filepath.Join(d, "kubeconfig")
		c.UnderlayKubeconfig = filepath.Join(d, "kubeconfig-underlay")
		c.KubeLog = filepath.Join(d, "kube.log")
		c.KubePIDFile = filepath.Join(d, "kube.pid")
	}
}

// kubeAPIUnderlay is the API's address in the underlay namespace.
func kubeAPIUnderlay(c int) string {
	return net.JoinHostPort(storeIP(c).String(), strconv.Itoa(kubePort))
}

// ensureKubeTools finds (or builds once, cached: 5–9 minutes the first
// time) etcd, kube-apiserver and kubectl before anything starts, so that
// run-kube does not time out building them.
func ensureKubeTools(ctx context.Context, progress io.Writer) error {
	for _, t := range []toolcache.Tool{toolcache.Etcd(), toolcache.KubeAPIServer(), toolcache.Kubectl()} {
		if _, err := toolcache.Ensure(ctx, t, progress); err != nil {
			return fmt.Errorf("find %s for --kubernetes: %w", t.Name, err)
		}
	}
	return nil
}

// startKube starts cluster c's control plane and kubelet (`weft testenv
// run-kube`) and waits until it is ready.
func (e *Env) startKube(ctx context.Context, c Cluster) error {
	d := e.kubeDir(c.Name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", d, err)
	}
	_ = os.Remove(filepath.Join(d, kubeReadyFile))
	pid, err := e.startDetached(process{
		args: []string{e.Bin.Weft, "testenv", "run-kube", "--name", e.Name, "--cluster", c.Name},
		log:  c.KubeLog, pidFile: c.KubePIDFile,
	})
	if err != nil {
		return fmt.Errorf("start Kubernetes of %s: %w", c.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for {
		if _, err := os.Stat(filepath.Join(d, kubeReadyFile)); err == nil {
			e.step("kubernetes %s: kube-apiserver ready (kubeconfig %s; pid %d, log %s)", c.Name, c.Kubeconfig, pid, c.KubeLog)
			return nil
		}
		if !alive(pid) {
			return fmt.Errorf("start Kubernetes of %s: run-kube exited (log %s):\n%s", c.Name, c.KubeLog, tail(c.KubeLog, 20))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("start Kubernetes of %s: not ready after 3 minutes (log %s)", c.Name, c.KubeLog)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// KubePodName is the testenv pod (its namespace weft-<env>-pod-<name>)
// testenv's kubelet creates for Kubernetes pod namespace/name of cluster:
// <cluster>-<namespace>-<name> when that is a valid pod name, else
// <cluster>-k<hash of namespace/name>.
func KubePodName(cluster, namespace, name string) string {
	if n := cluster + "-" + namespace + "-" + name; ValidatePodName(n) == nil {
		return n
	}
	h := sha256.Sum256([]byte(namespace + "/" + name))
	return cluster + "-k" + hex.EncodeToString(h[:])[:12]
}

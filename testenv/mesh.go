package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/weftnet/weft/clustermesh"
)

// Clustermesh layout of an environment (docs/clustermesh.md): cluster c's
// weft-apiserver runs in the underlay namespace next to its store, serves
// its etcd on https://192.168.0.1<c>:2381 (peer :2382) and metrics on
// :9962; its clustermesh directory, admin socket, log and pid file are in
// <env dir>/clustermesh/<cluster>/.
const (
	meshStorePort   = 2381
	meshMetricsPort = 9962
	meshRelayPort   = 4245
	meshUIPort      = 12000
)

// MeshUI is the URL of the service map cluster's apiserver serves over
// its relay (reachable from the underlay namespace).
func (e *Env) MeshUI(cluster string) (string, error) {
	c, err := e.Cluster(cluster)
	if err != nil {
		return "", err
	}
	return "http://" + net.JoinHostPort(storeIP(c.ID).String(), strconv.Itoa(meshUIPort)) + "/", nil
}

// MeshRelay is host:port of cluster's flow relay (its apiserver's
// --relay-listen).
func (e *Env) MeshRelay(cluster string) (string, error) {
	c, err := e.Cluster(cluster)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(storeIP(c.ID).String(), strconv.Itoa(meshRelayPort)), nil
}

// MeshRoot holds one clustermesh directory per cluster.
func (e *Env) MeshRoot() string { return filepath.Join(e.Dir, "clustermesh") }

// MeshTarget is cluster's clustermesh directory and admin socket.
func (e *Env) MeshTarget(cluster string) (clustermesh.Target, error) {
	return clustermesh.LoadTarget(e.MeshRoot(), cluster)
}

// EnableMesh creates cluster's CA, certificates and apiserver
// configuration (idempotent), starts its weft-apiserver unless it runs,
// and waits until it answers.
func (e *Env) EnableMesh(ctx context.Context, cluster string) error {
	d, err := e.prepareMesh(cluster)
	if err != nil {
		return err
	}
	if pid := readPID(d.Path("apiserver.pid")); !alive(pid) {
		if err := e.StartAPIServer(ctx, cluster); err != nil {
			return err
		}
	}
	return e.WaitAPIServer(ctx, cluster, time.Minute)
}

// prepareMesh creates cluster's clustermesh directory (idempotent): before
// the agents start, so that they serve their flows to the relay.
func (e *Env) prepareMesh(cluster string) (clustermesh.Dir, error) {
	c, err := e.Cluster(cluster)
	if err != nil {
		return "", err
	}
	ip := storeIP(c.ID).String()
	d := clustermesh.Dir(filepath.Join(e.MeshRoot(), c.Name))
	config := map[string]any{
		"routing-mode":       e.Routing,
		"pod-cidr-pool":      []string{c.PodCIDRPool},
		"store-listen":       []string{"https://" + net.JoinHostPort(ip, strconv.Itoa(meshStorePort))},
		"admin-listen":       []string{"unix://" + d.Path(clustermesh.AdminSocket)},
		"metrics-listen":     net.JoinHostPort(ip, strconv.Itoa(meshMetricsPort)),
		"kvstore":            e.KVStore,
		"kvstore-endpoints":  c.StoreEndpoints,
		"heartbeat-interval": "1s",
		"relay-listen":       net.JoinHostPort(ip, strconv.Itoa(meshRelayPort)),
		"relay-ui-listen":    net.JoinHostPort(ip, strconv.Itoa(meshUIPort)),
	}
	if e.Kubernetes {
		config["kubeconfig"] = c.UnderlayKubeconfig
		config["k8s-ingresses"] = true // the kubeconfig is the cluster admin's
	}
	if c.GlobalCIDR != "" {
		config["global-cidr"] = c.GlobalCIDR
	}
	err = clustermesh.Enable(clustermesh.EnableOptions{
		Dir: d, Cluster: c.Name, ID: uint32(c.ID), Hosts: []string{ip},
		Config: config, Step: e.step,
	})
	return d, err
}

func (e *Env) apiserverBinary() string {
	return filepath.Join(filepath.Dir(e.Bin.Agent), "weft-apiserver")
}

// StartAPIServer starts cluster's weft-apiserver in the underlay namespace,
// detached; it does not wait for it.
func (e *Env) StartAPIServer(ctx context.Context, cluster string) error {
	t, err := e.MeshTarget(cluster)
	if err != nil {
		return err
	}
	if pid := readPID(t.Dir.Path("apiserver.pid")); alive(pid) {
		return fmt.Errorf("start apiserver of %s: already running as pid %d", cluster, pid)
	}
	pid, err := e.startDetached(process{
		args:  []string{e.apiserverBinary(), "--config", t.Dir.Path(clustermesh.ConfigFile)},
		netns: e.Underlay, log: t.Dir.Path("apiserver.log"), pidFile: t.Dir.Path("apiserver.pid"),
	})
	if err != nil {
		return fmt.Errorf("start apiserver of %s: %w", cluster, err)
	}
	e.step("apiserver %s: started (pid %d, log %s)", cluster, pid, t.Dir.Path("apiserver.log"))
	return nil
}

// StopAPIServer sends sig to cluster's apiserver and waits until it exited.
func (e *Env) StopAPIServer(ctx context.Context, cluster string, sig syscall.Signal) error {
	t, err := e.MeshTarget(cluster)
	if err != nil {
		return err
	}
	pid := readPID(t.Dir.Path("apiserver.pid"))
	if !alive(pid) {
		return nil
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal apiserver of %s (pid %d): %w", cluster, pid, err)
	}
	if !waitGone([]int{pid}, 30*time.Second) {
		return fmt.Errorf("stop apiserver of %s: pid %d still runs after 30s", cluster, pid)
	}
	return nil
}

// WaitAPIServer waits until cluster's apiserver answers on its admin socket.
func (e *Env) WaitAPIServer(ctx context.Context, cluster string, timeout time.Duration) error {
	t, err := e.MeshTarget(cluster)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := clustermesh.Status(actx, t)
		acancel()
		if err == nil {
			e.step("apiserver %s: ready (admin %s)", cluster, t.Admin)
			return nil
		}
		if !alive(readPID(t.Dir.Path("apiserver.pid"))) {
			return fmt.Errorf("start apiserver of %s: the process exited (log %s)", cluster, t.Dir.Path("apiserver.log"))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for apiserver of %s: %w (last: %v; log %s)", cluster, ctx.Err(), err, t.Dir.Path("apiserver.log"))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ConnectMesh enables every cluster and connects every pair.
func (e *Env) ConnectMesh(ctx context.Context) error {
	for _, c := range e.Clusters {
		if err := e.EnableMesh(ctx, c.Name); err != nil {
			return err
		}
	}
	var errs []error
	for i, a := range e.Clusters {
		for _, b := range e.Clusters[i+1:] {
			ta, err := e.MeshTarget(a.Name)
			if err != nil {
				return err
			}
			tb, err := e.MeshTarget(b.Name)
			if err != nil {
				return err
			}
			errs = append(errs, clustermesh.Connect(ctx, ta, tb, e.step))
		}
	}
	return errors.Join(errs...)
}

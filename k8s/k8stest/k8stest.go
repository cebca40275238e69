// Package k8stest starts a real Kubernetes API (etcd 3.6 + kube-apiserver,
// see k8s/kubeserver) for a test and stops it in t.Cleanup.
package k8stest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/weftnet/weft/internal/testgate"
	"github.com/weftnet/weft/internal/toolcache"
	"github.com/weftnet/weft/k8s/kubeserver"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// startTimeout bounds finding (or building, the first time on a machine:
// kube-apiserver takes 5–9 minutes) the binaries and starting both servers.
const startTimeout = 20 * time.Minute

// Cluster is a running API with admin clients.
type Cluster struct {
	*kubeserver.Server
	Config  *rest.Config
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
}

// Start runs etcd and kube-apiserver for t. Their output is kept in t's
// temporary directory and printed when t fails. Without binaries that can
// be built the test is skipped (failed in CI, see testgate).
func Start(t testing.TB) *Cluster {
	t.Helper()
	testgate.Short(t)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "control-plane.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("create control plane log: %v", err)
	}
	t.Cleanup(func() { logFile.Close() })
	for _, tool := range []toolcache.Tool{toolcache.Etcd(), toolcache.KubeAPIServer()} {
		if _, err := toolcache.Ensure(ctx, tool, logFile); err != nil {
			testgate.Skip(t, tool.Name+" binary unavailable: "+err.Error())
		}
	}
	srv, err := kubeserver.Start(ctx, kubeserver.Options{Dir: dir, Log: logFile})
	if err != nil {
		t.Fatalf("start kube-apiserver: %v\n%s", err, tail(logPath))
	}
	t.Cleanup(func() {
		srv.Stop()
		if t.Failed() {
			t.Logf("control plane log:\n%s", tail(logPath))
		}
	})
	c := &Cluster{Server: srv, Config: srv.RESTConfig()}
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		t.Fatalf("kubernetes client: %v", err)
	}
	if c.Dynamic, err = dynamic.NewForConfig(c.Config); err != nil {
		t.Fatalf("dynamic client: %v", err)
	}
	return c
}

// tail is the last 8 KiB of a file.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 8<<10 {
		b = b[len(b)-8<<10:]
	}
	return string(b)
}

// Put encodes rec and writes it under key, failing t on error: the
// records a Kubernetes source (or a test standing in for it) writes.
func Put(t testing.TB, store kvstore.Writer, key string, rec records.Record) {
	t.Helper()
	val, err := records.Encode(key, rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Update(context.Background(), key, val); err != nil {
		t.Fatalf("write %s: %v", key, err)
	}
}

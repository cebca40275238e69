package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftnet/weft/api/agentapi"
)

// TestStatusRemoteFaultsAreWarnings: a remote cluster that is unreachable,
// has refused records and whose node does not answer leaves the node
// healthy (exit 0); the faults show on the remote's lines.
func TestStatusRemoteFaultsAreWarnings(t *testing.T) {
	dir := shortTempDir(t)
	socket := filepath.Join(dir, "agent.sock")
	fa := testAgent("c1-n1")
	fa.status.Health = append(fa.status.Health, &agentapi.NodeHealth{Node: "c2-n1", Cluster: "c2", Ip: "192.168.2.1", Error: "i/o timeout"})
	fa.status.RemoteClusters = []*agentapi.RemoteCluster{{Name: "c2", Nodes: 1, Endpoints: 3,
		Error: "unreachable for 25s: heartbeat of c2 unchanged for 21s; rejected 1 records outside its prefix or identity range"}}
	serve(t, socket, fa)
	r := runCLI(t, dir, nil, "--socket", socket, "status")
	if r.err != nil {
		t.Fatalf("weft status with a faulty remote: %v, want exit 0", r.err)
	}
	for _, want := range []string{
		"c2  not connected, not synced  1 nodes, 3 endpoints  WARN  unreachable for 25s: heartbeat of c2 unchanged for 21s; rejected 1 records",
		"c2-n1  192.168.2.1  unreachable  i/o timeout",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestStatusKubernetesSource: the cluster's Kubernetes source shows as OK
// with what it mirrors, or as a warning naming what it could not mirror
// (the cluster's objects, not this node's health: exit 0).
func TestStatusKubernetesSource(t *testing.T) {
	dir := shortTempDir(t)
	socket := filepath.Join(dir, "agent.sock")
	fa := testAgent("c1-n1")
	fa.status.Kubernetes = &agentapi.KubernetesSource{Holder: "apiserver-a", Time: "2026-11-21T09:59:58Z",
		Kinds: map[string]*agentapi.KubernetesKind{"k8s-pods": {Synced: true, Objects: 12}, "k8s-services": {Synced: true, Objects: 3},
			"k8s-namespaces": {Synced: true, Objects: 4}, "k8s-policies": {Synced: false}},
		ProblemCount: 2, Problems: []string{`Service dev/web: service.cilium.io/affinity "closest": accepted are none, local and remote`, "Pod dev/big: 70 labels"}}
	serve(t, socket, fa)
	r := runCLI(t, dir, nil, "--socket", socket, "status")
	if r.err != nil {
		t.Fatalf("weft status: %v, want exit 0", r.err)
	}
	want := `Kubernetes:   WARN  mirrored by apiserver-a, 3/4 kinds synced, 19 objects, reported 2s ago; `
	if !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, `not synced yet: policies; 2 objects not mirrored (Service dev/web: service.cilium.io/affinity "closest"`) {
		t.Errorf("summary lacks the Kubernetes line %q…:\n%s", want, r.stdout)
	}
}

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/testenv"
)

// TestFaultsStore (part of the fault suite, docs/reliability.md): the
// store of a two-node cluster is paused (SIGSTOP for the time of 400
// echoes, ~10 s) and killed (kill -9, restarted after ~5 s), on etcd and on
// Consul; on etcd a node's agent is also killed with
// `weft testenv restart-agent`. An established TCP flow between pods of
// the two nodes never breaks; afterwards every agent reaches its store and
// is synced, and a new pod is reachable. The reconvergence times are
// reported as FIGURE lines, not asserted.
func TestFaultsStore(t *testing.T) {
	for _, kv := range []string{testenv.StoreEtcd, testenv.StoreConsul} {
		t.Run(kv, func(t *testing.T) {
			t.Parallel()
			spec := testenv.DefaultSpec()
			spec.Nodes, spec.KVStore = 2, kv
			storeFaults(t, up(t, "fs"+kv[:1], spec), kv)
		})
	}
	t.Run("etcd-quorum", func(t *testing.T) {
		t.Parallel()
		spec := testenv.DefaultSpec()
		spec.Nodes, spec.StoreMembers = 2, 3
		quorumLoss(t, up(t, "fsq", spec))
	})
}

// quorumLoss pauses two of the three members of the cluster's etcd: the
// store has no quorum. Established flows go on, every agent says its
// store has no quorum (and the node is unhealthy), and once the members
// are back every agent is synced again and a new pod is reachable.
func quorumLoss(t *testing.T, e *testenv.Env) {
	a := addPod(t, e, "qa", "c1-n1")
	b := addPod(t, e, "qb", "c1-n2")
	waitReachable(t, e, a, b)
	f := startFlow(t, e, a, b, 7203, 90*time.Second)
	f.advance(t, 10, time.Minute, "flow before the quorum loss")
	c, err := e.Cluster("c1")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.StoreMembers) != 2 {
		t.Fatalf("the store of c1 has %d other members, want 2", len(c.StoreMembers))
	}
	var pids []int
	for _, pf := range c.StoreMembers {
		raw, err := os.ReadFile(pf)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil {
			t.Fatalf("pid file %s: %v", pf, err)
		}
		pids = append(pids, pid)
	}
	resume := func() {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	t0 := time.Now()
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, time.Minute, "every agent reports its store without quorum", func() error {
		for _, n := range e.Nodes {
			// The agent answers within its store wait (2 s) even so.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			a, closeFn, err := e.Agent(ctx, n.Name)
			if err != nil {
				return err
			}
			st, err := a.Status(ctx, &agentapi.StatusRequest{})
			closeFn()
			if err != nil {
				return err
			}
			if s := st.GetStore(); s.GetQuorum() && s.GetError() == "" {
				return fmt.Errorf("%s: store still reported healthy", n.Name)
			}
		}
		return nil
	})
	figure(t, "store-quorum-loss/etcd", "every agent reported the lost quorum after two of three members stopped in", time.Since(t0))
	f.advance(t, 200, 2*time.Minute, "flow while the store has no quorum")
	resume()
	at := time.Now()
	figure(t, "store-quorum-loss/etcd", "every agent synced again after the quorum came back in", storeSynced(t, e, at))
	figure(t, "store-quorum-loss/etcd", "a new pod reachable after the quorum came back in", newPodReachable(t, e, at, a, "qn", "c1-n2"))
	f.advance(t, 10, time.Minute, "flow after the quorum loss")
}

func storeFaults(t *testing.T, e *testenv.Env, kv string) {
	a := addPod(t, e, "fa", "c1-n1")
	b := addPod(t, e, "fb", "c1-n2")
	waitReachable(t, e, a, b)
	f := startFlow(t, e, a, b, 7201, 90*time.Second)
	f.advance(t, 10, time.Minute, "flow before the faults")

	// Paused: the datapath does not need the store.
	resume := pauseStore(t, e, "c1")
	f.advance(t, 400, 2*time.Minute, "flow while the "+kv+" store is paused")
	at := resume()
	figure(t, "store-pause/"+kv, "every agent synced again after SIGCONT in", storeSynced(t, e, at))
	figure(t, "store-pause/"+kv, "a new pod reachable after SIGCONT in", newPodReachable(t, e, at, a, "fp", "c1-n2"))
	f.advance(t, 10, time.Minute, "flow after the pause")

	// Killed and started again (etcd keeps its data; a Consul dev agent
	// starts empty and the agents publish their records again).
	restart := killStore(t, e, "c1")
	f.advance(t, 250, 2*time.Minute, "flow while the "+kv+" store is dead")
	at = restart()
	figure(t, "store-kill/"+kv, "every agent synced again after the restart in", storeSynced(t, e, at))
	figure(t, "store-kill/"+kv, "a new pod reachable after the restart in", newPodReachable(t, e, at, a, "fk", "c1-n2"))
	f.advance(t, 10, time.Minute, "flow after the store restart")

	if kv != testenv.StoreEtcd {
		return // the agent's restart does not depend on the backend
	}
	// kill -9 of the server pod's agent, the way a user does it.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, e.Bin.Weft, "--name", e.Name, "testenv", "restart-agent", "c1-n2").CombinedOutput()
	if err != nil {
		t.Fatalf("weft testenv restart-agent c1-n2: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "agent c1-n2: ready") || !strings.Contains(string(out), "after SIGKILL") {
		t.Errorf("weft testenv restart-agent c1-n2 printed %q, want the time until ready after SIGKILL", out)
	}
	figure(t, "agent-kill", "the agent answered again after kill -9 in", time.Since(t0))
	f.advance(t, 25, time.Minute, "flow after the agent's kill -9")
	figure(t, "agent-kill", "every agent synced again after kill -9 in", storeSynced(t, e, t0))
	figure(t, "agent-kill", "a new pod on the restarted node reachable after kill -9 in", newPodReachable(t, e, t0, a, "fr", "c1-n2"))
	f.advance(t, 10, time.Minute, "flow at the end")
	if e.AgentPID("c1-n2") == 0 {
		t.Error("c1-n2's agent does not run after restart-agent")
	}
}

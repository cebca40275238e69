package mesh

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/etcd"
	"github.com/weftnet/weft/state/records"
)

// The writer of the remote clusters' records runs in a child process (this
// test binary with driverEnv set), so its CPU and memory are not the
// agent's.
const driverEnv = "WEFT_BENCH_MESH_DRIVER"

// driverJob is what the child does: load the records of Clusters, or churn
// them at Rate churns per second per cluster for Seconds.
type driverJob struct {
	Mode     string          `json:"mode"` // "load" or "churn"
	Clusters []driverCluster `json:"clusters"`
	Rate     float64         `json:"rate"`
	Seconds  float64         `json:"seconds"`
}

// driverCluster reaches one served store as the cluster's own agents do
// (the agent certificate). Flips holds which endpoints were churned an odd
// number of times, and the churn cursor.
type driverCluster struct {
	ID    int            `json:"id"`
	Store kvstore.Config `json:"store"`
	Flips string         `json:"flips"`
}

// driverResult is the child's one line of output.
type driverResult struct {
	Churns  int     `json:"churns"`
	Seconds float64 `json:"seconds"`
}

func TestMain(m *testing.M) {
	if job := os.Getenv(driverEnv); job != "" {
		if err := runDriver(job, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runDriver(raw string, out io.Writer) error {
	var job driverJob
	if err := json.Unmarshal([]byte(raw), &job); err != nil {
		return fmt.Errorf("decode driver job: %w", err)
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var (
		mu    sync.Mutex
		total driverResult
	)
	g, ctx := errgroup.WithContext(ctx)
	if job.Mode == "load" {
		g.SetLimit(8)
	}
	start := time.Now()
	for _, c := range job.Clusters {
		g.Go(func() error {
			cl, err := etcd.New(ctx, c.Store, log)
			if err != nil {
				return fmt.Errorf("connect to the served store of %s: %w", clusterName(c.ID), err)
			}
			defer cl.Close(context.WithoutCancel(ctx))
			if job.Mode == "load" {
				return load(ctx, cl.Raw(), records.NewKeys(cl.Prefix()), c)
			}
			n, err := churn(ctx, cl.Raw(), records.NewKeys(cl.Prefix()), c, job.Rate, time.Duration(job.Seconds*float64(time.Second)))
			mu.Lock()
			total.Churns += n
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	total.Seconds = time.Since(start).Seconds()
	return json.NewEncoder(out).Encode(total)
}

// commit writes ops in transactions of at most 100 operations (what the
// apiserver's mirror uses; etcd refuses more than 128).
func commit(ctx context.Context, cli *clientv3.Client, ops []clientv3.Op) error {
	for len(ops) > 0 {
		n := min(len(ops), 100)
		if _, err := cli.Txn(ctx).Then(ops[:n]...).Commit(); err != nil {
			return fmt.Errorf("write %d records: %w", n, err)
		}
		ops = ops[n:]
	}
	return nil
}

func put(keys records.Keys, key string, r records.Record) (clientv3.Op, error) {
	val, err := records.Encode(key, r)
	return clientv3.OpPut(key, string(val)), err
}

// load writes the cluster's nodes, identities and endpoints (all unchurned).
func load(ctx context.Context, cli *clientv3.Client, keys records.Keys, c driverCluster) error {
	var ops []clientv3.Op
	add := func(key string, r records.Record) error {
		op, err := put(keys, key, r)
		ops = append(ops, op)
		return err
	}
	name := clusterName(c.ID)
	for k := range identities {
		id := records.ClusterIdentity(uint32(c.ID), records.MinClusterLocal+uint32(k))
		if err := add(keys.Identity(id), &records.Identity{ID: id, Labels: labelsOf(c.ID, k)}); err != nil {
			return err
		}
	}
	for j := range nodesPerCluster {
		n := nodeRecord(c.ID, j)
		if err := add(keys.Node(name, n.Name), &n); err != nil {
			return err
		}
		for s := range epsPerNode {
			e := endpointRecord(c.ID, j, s, false, fmt.Sprintf("pod-%d-%d", j, s))
			if err := add(keys.IPCache(name, e.IP), &e); err != nil {
				return err
			}
		}
		if len(ops) >= 1000 {
			if err := commit(ctx, cli, ops); err != nil {
				return err
			}
			ops = ops[:0]
		}
	}
	if err := commit(ctx, cli, ops); err != nil {
		return err
	}
	return os.WriteFile(c.Flips, make([]byte, epsPerCluster+8), 0o600)
}

// churn replaces rate pods per second for d: every 100 ms the churns due,
// each a delete of the pod's address and a create of its new one, in one
// transaction whose records carry the time it was sent. It returns the
// churns written.
func churn(ctx context.Context, cli *clientv3.Client, keys records.Keys, c driverCluster, rate float64, d time.Duration) (int, error) {
	state, err := os.ReadFile(c.Flips)
	if err != nil || len(state) != epsPerCluster+8 {
		return 0, fmt.Errorf("read churn state %s: %v (%d bytes)", c.Flips, err, len(state))
	}
	flips, cursorText := state[:epsPerCluster], state[epsPerCluster:]
	cursor, _ := strconv.Atoi(string(trimZero(cursorText)))
	name := clusterName(c.ID)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	start, done := time.Now(), 0
	for now := range tick.C {
		elapsed := now.Sub(start)
		if elapsed > d {
			break
		}
		due := min(int(rate*elapsed.Seconds())-done, 50)
		if due <= 0 {
			continue
		}
		ts := time.Now().UnixNano()
		ops := make([]clientv3.Op, 0, 2*due)
		for range due {
			idx := cursor * 7919 % epsPerCluster // 7919 is prime: every endpoint in turn
			cursor++
			j, s := idx/epsPerNode, idx%epsPerNode
			old := endpointIP(c.ID, j, s, flips[idx] == 1)
			flips[idx] ^= 1
			e := endpointRecord(c.ID, j, s, flips[idx] == 1, "churn-"+strconv.FormatInt(ts, 10))
			op, err := put(keys, keys.IPCache(name, e.IP), &e)
			if err != nil {
				return done, err
			}
			ops = append(ops, clientv3.OpDelete(keys.IPCache(name, old)), op)
		}
		if err := commit(ctx, cli, ops); err != nil {
			return done, err
		}
		done += due
	}
	copy(cursorText, fmt.Sprintf("%08d", cursor%epsPerCluster))
	return done, os.WriteFile(c.Flips, state, 0o600)
}

func trimZero(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

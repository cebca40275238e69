// Package mesh benchmarks one agent's clustermesh component
// (agent/clustermesh) connected to many remote clusters:
//
//	go test -run '^$' -bench BenchmarkMesh -benchtime 1x -timeout 60m ./bench/mesh/ | go run ./bench/benchtable
//
// BenchmarkMesh/clusters-N/nodes-1000x30, N = 1, 8, 64 (or the ascending
// list in $WEFT_BENCH_MESH_CLUSTERS, e.g. 1,8,16): N remote clusters
// of 1,000 nodes × 30 endpoints, each served by a real weft-apiserver
// (built from this tree, run as a child process, --embedded-store) whose
// directory `clustermesh.Enable` made, connected to the agent's cluster
// with `clustermesh.Connect` (certificates signed by each remote's remote
// CA, read through its read-only front over mutual TLS, exactly as
// `weft clustermesh connect` does). The synthetic records (nodes,
// identities, ipcache entries; state/records encoding and key layout) are
// written into each served store by a child process of this test binary,
// which also churns them: 1 % of all remote endpoints per second, spread
// evenly over the clusters, for 20 s; one churn replaces a pod (its
// address is deleted and a new address on the same node created, in one
// transaction).
//
// In the benchmark process run only what an agent runs for clustermesh:
// agent/clustermesh.Mesh, agent/nodes.Table, agent/policy.Engine (its
// identity universe; the recompute loop is not started, there are no
// policies) and agent/ipcache.Sync writing into a real BPF LPM trie with
// the layout of datapath/bpf's weft_ipcache (IPCacheKey → IPCacheValue),
// created unpinned by the benchmark. Its max_entries is sized to the
// benchmark (N × 31,000 + slack, at least the production 512,000): the
// agent's own weft_ipcache holds 512,000 entries, which 64 such clusters
// (1.98 M entries) do not fit in; see docs/performance.md. Node routes
// (native mode; the tunnel device route in tunnel mode) are counted, not
// installed into the kernel.
//
// Reported per N (benchtable lays them out with each N's ratio to N = 1):
//
//   - initial-sync-s: from Mesh.Run until every remote is connected and
//     synced and all N × 30,000 endpoints are in the BPF map;
//   - heap-B/ep: growth of the Go heap (HeapAlloc after runtime.GC) from
//     before Run to after the initial sync, per remote endpoint; it covers
//     everything the component keeps (the nodes, identities and the etcd
//     clients of the remotes, amortised per endpoint);
//   - rss-B/ep: growth of the process's VmRSS over the same span (after
//     debug.FreeOSMemory), per remote endpoint; the stores and the writer
//     are other processes, so this is the agent side alone (kernel memory
//     of the BPF map is not in RSS);
//   - sync-p50-ms, sync-p99-ms: from the writer's timestamp (taken just
//     before the transaction is sent to the remote's served store, carried
//     in the record's pod name) to the moment ipcache.Sync has written the
//     new address into the BPF map, over every churn of the window;
//   - cpu-ms/1k-changes: CPU time (getrusage, user + system) of the
//     benchmark process during the churn window, per 1,000 remote changes
//     applied (a churn is two: a delete and a create); at 1,000 changes/s
//     this many ms of CPU per second are spent (÷ 10 = % of one core);
//   - changes/s: remote changes applied per second during the window (the
//     rate reached, which the writer or the agent may fall short of);
//   - lost: churns written that had not reached the BPF map 60 s after the
//     writer stopped.
package mesh

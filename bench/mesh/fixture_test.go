package mesh

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/etcdserver"
)

// fixture is the mesh the sub-benchmarks share: the agent's cluster and
// the remote clusters started so far, each a weft-apiserver child process
// with its embedded served store, loaded with its records and connected to
// the agent's cluster. It grows as the sub-benchmarks ask for more
// clusters.
type fixture struct {
	root   string // clustermesh directories, one per cluster
	binary string // weft-apiserver built from this tree
	local  apiserver
	remote []apiserver // remote[i] is cluster id i+1
	base   *result     // the N = 1 figures of this run
	// cleanup registers with the top-level benchmark: the clusters
	// outlive each sub-benchmark.
	cleanup func(func())
}

// apiserver is one running weft-apiserver.
type apiserver struct {
	target clustermesh.Target
	store  string // served store URL (https)
	cmd    *exec.Cmd
	exited chan struct{}
}

func newFixture(b *testing.B) *fixture {
	b.Helper()
	f := &fixture{root: b.TempDir(), cleanup: b.Cleanup}
	f.binary = filepath.Join(f.root, "weft-apiserver")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", f.binary, "./cmd/weft-apiserver")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build weft-apiserver: %v\n%s", err, out)
	}
	var err error
	if f.local, err = f.start(b, localName, localID, localPool); err != nil {
		b.Fatal(err)
	}
	return f
}

// grow starts, loads and connects the remote clusters up to id n.
func (f *fixture) grow(b *testing.B, n int) {
	b.Helper()
	ctx := context.Background()
	first := len(f.remote) + 1
	if first > n {
		return
	}
	t0 := time.Now()
	var job driverJob
	job.Mode = "load"
	for id := first; id <= n; id++ {
		a, err := f.start(b, clusterName(id), id, podPool(id))
		if err != nil {
			b.Fatal(err)
		}
		f.remote = append(f.remote, a)
		job.Clusters = append(job.Clusters, f.driverCluster(id))
	}
	if _, err := runChild(job); err != nil {
		b.Fatalf("load the records of clusters %d-%d: %v", first, n, err)
	}
	for id := first; id <= n; id++ {
		if err := clustermesh.Connect(ctx, f.local.target, f.remote[id-1].target, func(string, ...any) {}); err != nil {
			b.Fatalf("connect %s and %s: %v", localName, clusterName(id), err)
		}
	}
	b.Logf("clusters %d-%d: started, %d records each loaded and connected in %v", first, n,
		nodesPerCluster+identities+epsPerCluster, time.Since(t0).Round(time.Millisecond))
}

// driverCluster is how the writer reaches cluster id's served store.
func (f *fixture) driverCluster(id int) driverCluster {
	a := f.remote[id-1]
	return driverCluster{ID: id, Store: agentStore(a), Flips: filepath.Join(f.root, clusterName(id)+".churn")}
}

// agentStore reaches a's served store with the cluster's agent
// certificate (read-write on weft/).
func agentStore(a apiserver) kvstore.Config {
	cfg := kvstore.DefaultConfig()
	cfg.Endpoints, cfg.RateLimit = []string{a.store}, kvstore.RateLimit{}
	cfg.DialTimeout = 30 * time.Second
	d := a.target.Dir
	cfg.TLS = kvstore.TLSFiles{CAFile: d.Path(clustermesh.CAFile), CertFile: d.Path("agent.crt"), KeyFile: d.Path("agent.key")}
	return cfg
}

// start enables cluster name (as `weft clustermesh enable` does) and runs
// its apiserver with an embedded served store, until the benchmark ends.
func (f *fixture) start(b *testing.B, name string, id int, pool string) (apiserver, error) {
	dir := clustermesh.Dir(filepath.Join(f.root, name))
	store, err := storeURL()
	if err != nil {
		return apiserver{}, err
	}
	front, err := etcdserver.FreeURL("https")
	if err != nil {
		return apiserver{}, err
	}
	cfg := map[string]any{
		"routing-mode": "tunnel", "pod-cidr-pool": []string{pool}, "pod-cidr-mask-size": podMaskSize,
		"store-listen": []string{store}, "remote-listen": []string{front},
		"admin-listen": []string{"unix://" + dir.Path(clustermesh.AdminSocket)}, "metrics-listen": "",
		"embedded-store": true,
		// Nothing here is garbage: the synthetic records have no owners.
		"identity-gc-grace": "240h", "node-gc-grace": "240h",
	}
	if err := clustermesh.Enable(clustermesh.EnableOptions{Dir: dir, Cluster: name, ID: uint32(id), Hosts: []string{"127.0.0.1"}, Config: cfg}); err != nil {
		return apiserver{}, fmt.Errorf("enable %s: %w", name, err)
	}
	logf, err := os.Create(dir.Path("apiserver.log"))
	if err != nil {
		return apiserver{}, err
	}
	defer logf.Close()
	cmd := exec.Command(f.binary, "--config", dir.Path(clustermesh.ConfigFile))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return apiserver{}, fmt.Errorf("start apiserver of %s: %w", name, err)
	}
	a := apiserver{target: clustermesh.Target{Name: name, Dir: dir, Admin: "unix://" + dir.Path(clustermesh.AdminSocket)},
		store: store, cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(a.exited) }()
	f.cleanup(func() { a.stop() })
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := clustermesh.Status(ctx, a.target)
		cancel()
		if err == nil {
			return a, nil
		}
		select {
		case <-a.exited:
			log, _ := os.ReadFile(dir.Path("apiserver.log"))
			return a, fmt.Errorf("apiserver of %s exited: %s", name, tail(log))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return a, fmt.Errorf("apiserver of %s not ready after 2m: %v", name, err)
		}
	}
}

// stop ends the apiserver: SIGTERM, SIGKILL after 10 s.
func (a apiserver) stop() {
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(10 * time.Second):
		a.cmd.Process.Kill()
		<-a.exited
	}
}

// storeURL is a free https URL on loopback whose port + 1 (the served
// store's peer port) is free too.
func storeURL() (string, error) {
	for range 20 {
		u, err := etcdserver.FreeURL("https")
		if err != nil {
			return "", err
		}
		p, _ := url.Parse(u)
		port, _ := strconv.Atoi(p.Port())
		l, err := net.Listen("tcp", net.JoinHostPort(p.Hostname(), strconv.Itoa(port+1)))
		if err == nil {
			l.Close()
			return u, nil
		}
	}
	return "", errors.New("no free port pair on loopback")
}

// runChild runs job in a child process of this test binary.
func runChild(job driverJob) (driverResult, error) {
	raw, err := json.Marshal(job)
	if err != nil {
		return driverResult{}, err
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), driverEnv+"="+string(raw))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return driverResult{}, fmt.Errorf("%s %w: %s", job.Mode, err, tail(errOut.Bytes()))
	}
	var res driverResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return res, fmt.Errorf("decode the writer's result %q: %w", out.String(), err)
	}
	return res, nil
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Store ports inside the underlay namespace (each cluster has its own
// address, so every store uses the backend's usual port).
const (
	etcdPort   = 2379
	consulPort = 8500
)

func storePort(backend string) int {
	if backend == StoreConsul {
		return consulPort
	}
	return etcdPort
}

// startStore starts cluster c's store in the underlay namespace and waits
// until it answers through the host-side forwarder.
func (e *Env) startStore(ctx context.Context, c *Cluster) error {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("open host listener for the %s store: %w", c.Name, err)
	}
	defer ln.Close() // the store process holds its own copy
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		return fmt.Errorf("hand over host listener: %w", err)
	}
	defer f.Close()
	c.HostStoreEndpoints = []string{"http://" + ln.Addr().String()}

	dataDir := filepath.Join(e.Dir, "store-"+c.Name)
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("create store directory %s: %w", dataDir, err)
	}
	members := len(c.StoreMembers) + 1
	for m := 0; m < members; m++ {
		args := []string{e.Bin.Weft, "testenv", "run-store",
			"--kvstore", e.KVStore, "--data-dir", dataDir, "--listen", c.StoreEndpoints[0]}
		p := process{netns: e.Underlay, log: c.StoreLog, pidFile: c.StorePIDFile}
		if m == 0 {
			args = append(args, "--forward-fd", "3")
			p.files = []*os.File{f}
		} else {
			p.log, p.pidFile = strings.TrimSuffix(c.StoreLog, ".log")+fmt.Sprintf("-m%d.log", m), c.StoreMembers[m-1]
		}
		if members > 1 {
			args = append(args, "--members", strconv.Itoa(members), "--member", strconv.Itoa(m))
		}
		if e.KVStore == StoreConsul {
			args = append(args, "--consul-binary", e.Bin.Consul)
		}
		p.args = args
		if _, err := e.startDetached(p); err != nil {
			return fmt.Errorf("start %s store of %s (member %d): %w", e.KVStore, c.Name, m, err)
		}
	}
	return e.waitStore(ctx, *c)
}

// memberURL is the client URL of etcd member m of a store whose member 0
// listens on base: the same address, ports 10 apart (peer port: client+1).
func memberURL(base string, m int) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	port, _ := strconv.Atoi(u.Port())
	return "http://" + net.JoinHostPort(u.Hostname(), strconv.Itoa(port+10*m))
}

func (e *Env) waitStore(ctx context.Context, c Cluster) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var last error
	for {
		if last = StoreReady(ctx, e.KVStore, c.HostStoreEndpoints[0]); last == nil {
			return nil
		}
		if !alive(readPID(c.StorePIDFile)) {
			return fmt.Errorf("start %s store of %s: the process exited (log %s)", e.KVStore, c.Name, c.StoreLog)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s store of %s at %s: %w (last: %v; log %s)", e.KVStore, c.Name, c.HostStoreEndpoints[0], ctx.Err(), last, c.StoreLog)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// StoreReady asks the store at endpoint (an http URL) whether it serves:
// etcd's /health, Consul's elected leader.
func StoreReady(ctx context.Context, backend, endpoint string) error {
	path := "/health"
	if backend == StoreConsul {
		path = "/v1/status/leader"
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, endpoint+path, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s%s: %s", endpoint, path, resp.Status)
	}
	if backend == StoreConsul {
		var leader string
		if err := json.NewDecoder(resp.Body).Decode(&leader); err != nil || leader == "" {
			return fmt.Errorf("GET %s%s: no leader yet", endpoint, path)
		}
		return nil
	}
	var h struct {
		Health string `json:"health"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || h.Health != "true" {
		return fmt.Errorf("GET %s%s: not healthy", endpoint, path)
	}
	return nil
}

func storeURL(c int, backend string) string {
	return "http://" + net.JoinHostPort(storeIP(c).String(), strconv.Itoa(storePort(backend)))
}

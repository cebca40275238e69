package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
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
	args := []string{e.Bin.Weft, "testenv", "run-store",
		"--kvstore", e.KVStore, "--data-dir", dataDir,
		"--listen", c.StoreEndpoints[0], "--forward-fd", "3"}
	if e.KVStore == StoreConsul {
		args = append(args, "--consul-binary", e.Bin.Consul)
	}
	if _, err := e.startDetached(process{
		args: args, netns: e.Underlay, log: c.StoreLog, pidFile: c.StorePIDFile, files: []*os.File{f},
	}); err != nil {
		return fmt.Errorf("start %s store of %s: %w", e.KVStore, c.Name, err)
	}
	return e.waitStore(ctx, *c)
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

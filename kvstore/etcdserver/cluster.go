package etcdserver

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
)

// Cluster is a static multi-member etcd cluster in this process, for fault
// tests (a member can be stopped and started again).
type Cluster struct {
	Members []*Server
}

// StartCluster starts n members with data under dir, concurrently (members
// of a new cluster wait for each other). logLevel is etcd's own ("" = error).
func StartCluster(ctx context.Context, dir string, n int, logLevel string) (*Cluster, error) {
	opts := make([]Options, n)
	var initial []string
	for i := range opts {
		client, err := FreeURL("http")
		if err != nil {
			return nil, err
		}
		peer, err := FreeURL("http")
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("member%d", i)
		opts[i] = Options{
			Name: name, DataDir: filepath.Join(dir, name),
			ClientURLs: []string{client}, PeerURLs: []string{peer},
			ClusterToken: filepath.Base(dir), LogLevel: logLevel,
		}
		initial = append(initial, name+"="+peer)
	}
	c := &Cluster{Members: make([]*Server, n)}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range opts {
		opts[i].InitialCluster = strings.Join(initial, ",")
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Members[i], errs[i] = Start(ctx, opts[i])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			c.Stop()
			return nil, fmt.Errorf("start %d-member cluster: %w", n, err)
		}
	}
	return c, nil
}

// Endpoints are the client URLs of every member.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		if m != nil {
			eps = append(eps, m.Endpoints()...)
		}
	}
	return eps
}

// Stop stops every member.
func (c *Cluster) Stop() {
	for _, m := range c.Members {
		if m != nil {
			m.Stop()
		}
	}
}

// Restart stops every member and starts them again with their data, all at
// once (members of a restarting cluster wait for each other's votes).
func (c *Cluster) Restart(ctx context.Context) error {
	c.Stop()
	errs := make([]error, len(c.Members))
	var wg sync.WaitGroup
	for i, m := range c.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.start(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			c.Stop()
			return fmt.Errorf("restart cluster: %w", err)
		}
	}
	return nil
}

package consulserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ports are the loopback ports one agent listens on.
type ports struct {
	http    int // HTTP API (TCP)
	serfLAN int // gossip (TCP and UDP)
	server  int // server RPC (TCP)
}

// pickPorts asks the kernel for three free loopback ports. The serf port
// must be free for both TCP and UDP.
func pickPorts() (ports, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	tcp := func() (int, error) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("pick free loopback port: %w", err)
		}
		ls = append(ls, l)
		return l.Addr().(*net.TCPAddr).Port, nil
	}
	var p ports
	var err error
	if p.http, err = tcp(); err != nil {
		return p, err
	}
	if p.server, err = tcp(); err != nil {
		return p, err
	}
	for range 20 {
		if p.serfLAN, err = tcp(); err != nil {
			return p, err
		}
		u, uerr := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p.serfLAN))
		if uerr == nil {
			u.Close()
			return p, nil
		}
	}
	return p, errors.New("pick free loopback port: no port free for both TCP and UDP after 20 tries")
}

// waitReady polls until the agent reports a leader and its own node is in
// the catalog (sessions cannot be created before), ctx ends or the process
// exits.
func waitReady(ctx context.Context, endpoint, node, token string, exited <-chan struct{}) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		var leader string
		err := getJSON(ctx, hc, endpoint+"/v1/status/leader", token, &leader)
		if err == nil && leader == "" {
			err = errors.New("no leader elected yet")
		}
		if err == nil {
			var n *struct{ Node any }
			err = getJSON(ctx, hc, endpoint+"/v1/catalog/node/"+node, token, &n)
			if err == nil && n == nil {
				err = fmt.Errorf("node %s not registered yet", node)
			}
			if err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for agent ready: %w (last: %v)", ctx.Err(), last)
		case <-exited:
			return errors.New("wait for agent ready: agent exited (see its log)")
		case <-tick.C:
		}
	}
}

func getJSON(ctx context.Context, hc *http.Client, url, token string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("X-Consul-Token", token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", url, err)
	}
	return nil
}

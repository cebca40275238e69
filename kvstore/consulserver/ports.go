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

// waitLeader polls the status endpoint until the agent reports a leader,
// ctx ends or the process exits.
func waitLeader(ctx context.Context, endpoint string, exited <-chan struct{}) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		leader, err := getLeader(ctx, hc, endpoint)
		if err == nil && leader != "" {
			return nil
		}
		if err == nil {
			err = errors.New("no leader elected yet")
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for leader: %w (last: %v)", ctx.Err(), last)
		case <-exited:
			return errors.New("wait for leader: agent exited (see its log)")
		case <-tick.C:
		}
	}
}

func getLeader(ctx context.Context, hc *http.Client, endpoint string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/v1/status/leader", nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	var leader string
	if err := json.NewDecoder(resp.Body).Decode(&leader); err != nil {
		return "", fmt.Errorf("decode leader: %w", err)
	}
	return leader, nil
}

package relay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/metadata"

	"github.com/weftnet/weft/api/agentapi"
)

// Relay serves the merged flows of its peers as agentapi.Observer.
type Relay struct {
	agentapi.UnimplementedObserverServer
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	peers map[string]*peer // by node
}

type peer struct {
	Peer
	client agentapi.ObserverClient
	close  func() error
}

// New returns a relay of cfg.Peers; Close releases its connections.
func New(cfg Config, log *slog.Logger) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Relay{cfg: cfg, log: log.With("component", "relay"), peers: map[string]*peer{}}
	if err := r.SetPeers(cfg.Peers); err != nil {
		return nil, err
	}
	return r, nil
}

// SetPeers replaces the agents the relay reads; streams already open keep
// the peers they started with.
func (r *Relay) SetPeers(peers []Peer) error {
	if err := validatePeers(peers); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := map[string]bool{}
	for _, p := range peers {
		keep[p.Node] = true
		if old, ok := r.peers[p.Node]; ok && old.Address == p.Address && old.Relay == p.Relay && old.TLS == p.TLS {
			continue
		} else if ok {
			old.close()
		}
		var (
			client    agentapi.ObserverClient
			closeConn func() error
			err       error
		)
		if path, unix := p.unixPath(); unix {
			client, closeConn, err = agentapi.DialObserver(context.Background(), path)
		} else if tlsCfg := cmp.Or(p.TLS, r.cfg.TLS); tlsCfg == nil {
			err = errors.New("no TLS configuration for a TCP peer")
		} else {
			client, closeConn, err = agentapi.DialObserverTCP(p.Address, tlsCfg.Clone(), r.cfg.Dial)
		}
		if err != nil {
			return fmt.Errorf("relay peer %s: %w", p.Node, err)
		}
		r.peers[p.Node] = &peer{Peer: p, client: client, close: closeConn}
	}
	for node, p := range r.peers {
		if !keep[node] {
			p.close()
			delete(r.peers, node)
		}
	}
	return nil
}

// Close closes the connections to every peer.
func (r *Relay) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for node, p := range r.peers {
		p.close()
		delete(r.peers, node)
	}
	return nil
}

func (r *Relay) snapshot() []*peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*peer, 0, len(r.peers))
	for _, p := range r.peers {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *peer) int {
		if a.Node < b.Node {
			return -1
		}
		if a.Node > b.Node {
			return 1
		}
		return 0
	})
	return out
}

// ServerStatus sums the peers' ring status and lists each peer's state.
func (r *Relay) ServerStatus(ctx context.Context, _ *agentapi.ServerStatusRequest) (*agentapi.ServerStatusResponse, error) {
	peers := r.peersFor(ctx)
	answers := make([]*agentapi.ServerStatusResponse, len(peers))
	errs := make([]error, len(peers))
	var g errgroup.Group
	for i, p := range peers {
		g.Go(func() error {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			answers[i], errs[i] = p.client.ServerStatus(p.outgoing(cctx), &agentapi.ServerStatusRequest{})
			return nil
		})
	}
	g.Wait()
	out := &agentapi.ServerStatusResponse{}
	for i, p := range peers {
		st := &agentapi.NodeStatus{Node: p.Node, Address: p.Address, Connected: errs[i] == nil}
		if errs[i] != nil {
			st.Error = errs[i].Error()
		} else {
			a := answers[i]
			out.NumFlows += a.GetNumFlows()
			out.MaxFlows += a.GetMaxFlows()
			out.SeenFlows += a.GetSeenFlows()
			out.FlowsPerSecond += a.GetFlowsPerSecond()
			out.LostFlows += a.GetLostFlows()
			out.UptimeNs = max(out.UptimeNs, a.GetUptimeNs())
			if p.Relay { // the other cluster's nodes, each as its relay sees it
				out.Nodes = append(out.Nodes, a.GetNodes()...)
				continue
			}
		}
		out.Nodes = append(out.Nodes, st)
	}
	return out, nil
}

// ScopeMetadata is the gRPC metadata key a relay sends to another
// cluster's relay; its value ScopeCluster asks for that cluster's own
// agents only.
const (
	ScopeMetadata = "weft-relay-scope"
	ScopeCluster  = "cluster"
)

// peersFor returns the peers that answer the request of ctx: every peer,
// or only agents when the request is limited to this cluster.
func (r *Relay) peersFor(ctx context.Context) []*peer {
	peers := r.snapshot()
	if !r.clusterOnly(ctx) {
		return peers
	}
	return slices.DeleteFunc(peers, func(p *peer) bool { return p.Relay })
}

func (r *Relay) clusterOnly(ctx context.Context) bool {
	if md, ok := metadata.FromIncomingContext(ctx); ok && slices.Contains(md.Get(ScopeMetadata), ScopeCluster) {
		return true
	}
	return r.cfg.ClusterOnly != nil && r.cfg.ClusterOnly(ctx)
}

// outgoing marks a request to another cluster's relay as limited to that
// cluster.
func (p *peer) outgoing(ctx context.Context) context.Context {
	if !p.Relay {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, ScopeMetadata, ScopeCluster)
}

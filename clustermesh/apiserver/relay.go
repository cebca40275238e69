package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/flow"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/relay"
	"github.com/weftnet/weft/relay/ui"
	"github.com/weftnet/weft/state/records"
)

// relayRefresh is how often the relay re-reads the cluster's nodes and
// the connected clusters' relays.
const relayRefresh = 2 * time.Second

// runRelay serves the flow relay on --relay-listen: the merged flows of
// every agent of the cluster (their --relay-agent-port, mutual TLS with
// the flows-agent and relay certificates of the clustermesh directory) and
// of every connected cluster's relay (with the credentials to read that
// cluster). Clients present a certificate of the cluster's CA (the admin
// certificate) or, for another cluster's relay, of the remote CA; the
// latter are answered with this cluster's agents only.
func (s *Server) runRelay(ctx context.Context) error {
	agentTLS, err := s.relayClientTLS()
	if err != nil {
		return err
	}
	serverTLS, err := s.relayServerTLS()
	if err != nil {
		return err
	}
	cfg := relay.DefaultConfig()
	cfg.TLS = agentTLS
	cfg.ClusterOnly = fromRemoteCluster
	r, err := relay.New(cfg, s.log)
	if err != nil {
		return err
	}
	defer r.Close()
	l, err := net.Listen("tcp", s.cfg.RelayListen)
	if err != nil {
		return fmt.Errorf("listen for the relay on %s: %w", s.cfg.RelayListen, err)
	}
	s.log.Info("serving the flow relay", "address", l.Addr().String(), "agent-port", s.cfg.RelayAgentPort)
	done := make(chan error, 2)
	go func() { done <- flow.Serve(ctx, l, serverTLS, r) }()
	if s.cfg.RelayUIListen != "" {
		ul, err := net.Listen("tcp", s.cfg.RelayUIListen)
		if err != nil {
			l.Close()
			<-done
			return fmt.Errorf("listen for the service map on %s: %w", s.cfg.RelayUIListen, err)
		}
		srv := &http.Server{Handler: ui.Handler(r, s.log), ReadHeaderTimeout: 10 * time.Second}
		stop := context.AfterFunc(ctx, func() { srv.Close() })
		defer stop()
		s.log.Info("serving the service map", "address", "http://"+ul.Addr().String()+"/")
		go func() {
			if err := srv.Serve(ul); err != nil && !errors.Is(err, http.ErrServerClosed) {
				done <- fmt.Errorf("serve the service map: %w", err)
			}
		}()
	}
	// The cluster's nodes follow the store's watch; connected clusters'
	// relays are re-read from the remotes directory on every tick.
	keys := records.NewKeys(s.source.Prefix())
	nodes := s.source.ListAndWatch(ctx, keys.NodesPrefix(s.cfg.ClusterName))
	agents := map[string]relay.Peer{} // by node record key
	remotes := map[string]*remoteRelay{}
	tick := time.NewTicker(relayRefresh)
	defer tick.Stop()
	var lastErr string
	for {
		err := r.SetPeers(append(slices.Collect(maps.Values(agents)), s.remoteRelayPeers(remotes)...))
		if msg := fmt.Sprint(err); err != nil && msg != lastErr {
			s.log.Warn("relay: cannot refresh its peers; keeping the last ones", "error", err)
			lastErr = msg
		} else if err == nil {
			lastErr = ""
		}
		select {
		case err := <-done:
			return err
		case ev, ok := <-nodes:
			if !ok {
				return <-done // ctx ended
			}
			s.applyNodeEvent(keys, agents, ev)
		case <-tick.C:
		}
	}
}

// applyNodeEvent keeps agents (the relay's agent peers, by node record
// key) in step with one event of the cluster's node records.
func (s *Server) applyNodeEvent(keys records.Keys, agents map[string]relay.Peer, ev kvstore.Event) {
	switch ev.Type {
	case kvstore.EventUpsert:
		n, err := keys.DecodeNode(ev.Key, ev.Value)
		if err != nil || len(n.Underlay) == 0 {
			delete(agents, ev.Key) // the agents' own checks report a bad record
			return
		}
		agents[ev.Key] = relay.Peer{Node: n.Name, Address: net.JoinHostPort(n.Underlay[0].String(), strconv.Itoa(s.cfg.RelayAgentPort))}
	case kvstore.EventDelete:
		delete(agents, ev.Key)
	}
}

// remoteRelay is a connected cluster's relay and the TLS configuration
// to read it, kept while its address and credentials stay the same (the
// relay redials a peer whose TLS configuration changed).
type remoteRelay struct {
	address, stamp string
	tls            *tls.Config
}

// remoteRelayPeers are the connected clusters' relays (remotes keeps
// their TLS configurations between calls). A directory that cannot be
// read keeps the relays known.
func (s *Server) remoteRelayPeers(remotes map[string]*remoteRelay) []relay.Peer {
	var peers []relay.Peer
	seen := map[string]bool{}
	entries, err := os.ReadDir(s.dir.Path(clustermesh.RemotesSubdir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("relay: cannot read the connected clusters; keeping the last ones", "error", err)
		for name, rr := range remotes {
			peers = append(peers, relay.Peer{Node: "relay:" + name, Address: rr.address, TLS: rr.tls, Relay: true})
		}
		return peers
	}
	for _, e := range entries {
		rr, err := s.loadRemoteRelay(e.Name(), remotes[e.Name()])
		if err != nil {
			s.log.Debug("relay: connected cluster without a readable relay", "remote", e.Name(), "error", err)
			continue
		}
		if rr == nil {
			continue
		}
		remotes[e.Name()], seen[e.Name()] = rr, true
		peers = append(peers, relay.Peer{Node: "relay:" + e.Name(), Address: rr.address, TLS: rr.tls, Relay: true})
	}
	for name := range remotes {
		if !seen[name] {
			delete(remotes, name)
		}
	}
	return peers
}

// loadRemoteRelay reads remotes/<cluster>/: the cluster's info (its relay
// address, its CA) and this cluster's credentials to read it. It returns
// nil when the cluster serves no relay.
func (s *Server) loadRemoteRelay(cluster string, have *remoteRelay) (*remoteRelay, error) {
	dir := s.dir.Remote(cluster)
	raw, err := os.ReadFile(filepath.Join(dir, infoFile))
	if err != nil {
		return nil, err
	}
	var info clustermesh.Info
	if err := json.Unmarshal(raw, &info); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, infoFile), err)
	}
	if info.Relay == "" {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(info.Relay)
	if err != nil {
		return nil, fmt.Errorf("relay address %q: %w", info.Relay, err)
	}
	cert, err := os.ReadFile(filepath.Join(dir, clustermesh.ClientCert))
	if err != nil {
		return nil, err
	}
	stamp := info.Relay + "\n" + info.CA + "\n" + string(cert)
	if have != nil && have.stamp == stamp {
		return have, nil
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, clustermesh.ClientCert), filepath.Join(dir, clustermesh.ClientKey))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(info.CA)) {
		return nil, fmt.Errorf("cluster %s: no CA certificate in its info", cluster)
	}
	return &remoteRelay{address: info.Relay, stamp: stamp, tls: &tls.Config{Certificates: []tls.Certificate{pair},
		RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS13}}, nil
}

// relayClientTLS is the relay's client of the agents: the relay
// certificate, agents named weft-agent under the cluster's CA.
func (s *Server) relayClientTLS() (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(s.dir.Cert(clustermesh.Relay), s.dir.Key(clustermesh.Relay))
	if err != nil {
		return nil, fmt.Errorf("relay: %w (run `weft clustermesh enable %s` again to create the relay's certificates)", err, s.cfg.ClusterName)
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.ca.Cert)
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, ServerName: clustermesh.FlowsAgentName, MinVersion: tls.VersionTLS13}, nil
}

// relayServerTLS serves the relay with the serving certificate to clients
// of the cluster's CA and of the remote CA (connected clusters' relays).
func (s *Server) relayServerTLS() (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(s.dir.Cert(clustermesh.Server), s.dir.Key(clustermesh.Server))
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	remoteCA, err := clustermesh.LoadRemoteCA(s.cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.ca.Cert)
	pool.AddCert(remoteCA.Cert)
	return &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}, nil
}

// fromRemoteCluster says whether the client of ctx is another cluster
// (its certificate names remote-<cluster>): it gets this cluster's agents
// only.
func fromRemoteCluster(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return false
	}
	return strings.HasPrefix(info.State.PeerCertificates[0].Subject.CommonName, clustermesh.RemoteUser(""))
}

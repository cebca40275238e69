package readproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// readMethods are the only calls that reach the store.
var readMethods = map[string]bool{
	"/etcdserverpb.KV/Range":    true,
	"/etcdserverpb.Watch/Watch": true,
}

const userPrefix = "remote-"

// clusterOf is the remote cluster named by a verified client certificate.
func clusterOf(ai credentials.AuthInfo) (string, bool) {
	ti, ok := ai.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return "", false
	}
	name, ok := strings.CutPrefix(ti.State.VerifiedChains[0][0].Subject.CommonName, userPrefix)
	return name, ok && name != ""
}

// limitCreds counts each remote's connections after the TLS handshake and
// refuses those beyond its limit.
type limitCreds struct {
	credentials.TransportCredentials
	p *Proxy
}

func (c limitCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, ai, err := c.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		return nil, nil, err
	}
	cluster, ok := clusterOf(ai)
	if !ok {
		conn.Close()
		return nil, nil, errors.New("client certificate does not name a remote cluster (remote-<cluster>)")
	}
	tc := &trackedConn{Conn: conn}
	p := c.p
	p.mu.Lock()
	r := p.remoteLocked(cluster)
	if len(r.conns) >= p.o.Config.MaxConnections {
		p.mu.Unlock()
		conn.Close()
		p.m.refused.WithLabelValues(cluster, "connections").Inc()
		p.log.Warn("refused a connection of a remote cluster at its limit", "remote", cluster, "limit", p.o.Config.MaxConnections)
		return nil, nil, fmt.Errorf("remote %s holds %d connections, the limit", cluster, p.o.Config.MaxConnections)
	}
	r.conns[tc] = struct{}{}
	p.m.connections.WithLabelValues(cluster).Set(float64(len(r.conns)))
	p.mu.Unlock()
	tc.release = func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(r.conns, tc)
		p.m.connections.WithLabelValues(cluster).Set(float64(len(r.conns)))
	}
	return tc, ai, nil
}

func (c limitCreds) Clone() credentials.TransportCredentials {
	return limitCreds{TransportCredentials: c.TransportCredentials.Clone(), p: c.p}
}

// trackedConn releases its slot once, when closed.
type trackedConn struct {
	net.Conn
	release func()
	once    sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		if c.release != nil {
			c.release()
		}
	})
	return err
}

type remoteKey struct{}

func remoteFrom(ctx context.Context) *remote { r, _ := ctx.Value(remoteKey{}).(*remote); return r }

// admit identifies the caller and decides whether method may proceed.
func (p *Proxy) admit(ctx context.Context, method string) (*remote, error) {
	arrived := time.Now()
	pr, ok := peer.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no peer information")
	}
	cluster, ok := clusterOf(pr.AuthInfo)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "a remote cluster's client certificate (remote-<cluster>) is required")
	}
	p.mu.Lock()
	loaded, allowed := p.loaded, p.allowed[cluster]
	r := p.remoteLocked(cluster)
	p.mu.Unlock()
	if !allowed {
		// Another apiserver of the cluster may have admitted it just now.
		p.recheck(ctx, arrived)
		p.mu.Lock()
		loaded, allowed = p.loaded, p.allowed[cluster]
		p.mu.Unlock()
	}
	switch {
	case !allowed && !loaded:
		return r, status.Errorf(codes.Unavailable, "the list of remote clusters allowed to read is not loaded yet; retry")
	case !allowed:
		p.m.refused.WithLabelValues(cluster, "not-connected").Inc()
		return r, status.Errorf(codes.PermissionDenied, "remote cluster %s may not read this store: it is not connected (or was disconnected)", cluster)
	case !readMethods[method]:
		p.m.refused.WithLabelValues(cluster, "method").Inc()
		return r, status.Errorf(codes.PermissionDenied, "remote cluster %s may only read (Range, Watch): %s is refused", cluster, method)
	case !r.lim.Allow():
		p.m.refused.WithLabelValues(cluster, "rate").Inc()
		return r, status.Errorf(codes.ResourceExhausted, "remote cluster %s exceeds its request rate (%v/s, burst %d)", cluster, p.o.Config.RequestRate, p.o.Config.RequestBurst)
	}
	return r, nil
}

func (p *Proxy) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	r, err := p.admit(ctx, info.FullMethod)
	var resp any
	if err == nil {
		resp, err = handler(context.WithValue(ctx, remoteKey{}, r), req)
	}
	p.count(r, info.FullMethod, err)
	return resp, err
}

func (p *Proxy) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	r, err := p.admit(ss.Context(), info.FullMethod)
	if err == nil {
		err = handler(srv, &remoteStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), remoteKey{}, r)})
	}
	p.count(r, info.FullMethod, err)
	return err
}

// unknown answers every service the front does not register; the stream
// interceptor has refused it already.
func (p *Proxy) unknown(any, grpc.ServerStream) error {
	return status.Error(codes.PermissionDenied, "remote clusters may only read")
}

func (p *Proxy) count(r *remote, method string, err error) {
	name := "unknown"
	if r != nil {
		name = r.name
	}
	p.m.requests.WithLabelValues(name, methodLabel(method), status.Code(err).String()).Inc()
}

type remoteStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *remoteStream) Context() context.Context { return s.ctx }

package dnsproxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Upstream sockets are kept for reuse: opening, connecting and closing a
// UDP socket per query cost about as much as the exchange itself.
const (
	maxIdlePerUpstream = 16
	maxIdle            = 256
	idleTimeout        = 30 * time.Second
)

type idleConn struct {
	conn  *net.UDPConn
	since time.Time
}

// upstreams keeps idle connected UDP sockets per DNS server.
type upstreams struct {
	mu     sync.Mutex
	idle   map[netip.AddrPort][]idleConn
	count  int
	closed bool
}

// get returns an idle socket to server not older than idleTimeout, or
// dials a new one.
func (u *upstreams) get(ctx context.Context, server netip.AddrPort) (*net.UDPConn, error) {
	now := time.Now()
	u.mu.Lock()
	for list := u.idle[server]; len(list) > 0; list = u.idle[server] {
		ic := list[len(list)-1]
		u.idle[server] = list[:len(list)-1]
		u.count--
		if len(u.idle[server]) == 0 {
			delete(u.idle, server)
		}
		if now.Sub(ic.since) < idleTimeout {
			u.mu.Unlock()
			return ic.conn, nil
		}
		ic.conn.Close()
	}
	u.mu.Unlock()
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", server.String())
	if err != nil {
		return nil, err
	}
	return c.(*net.UDPConn), nil
}

// put keeps a socket that finished an exchange cleanly for the next query
// to server, or closes it when enough are kept.
func (u *upstreams) put(server netip.AddrPort, c *net.UDPConn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed || u.count >= maxIdle || len(u.idle[server]) >= maxIdlePerUpstream {
		c.Close()
		return
	}
	if u.idle == nil {
		u.idle = map[netip.AddrPort][]idleConn{}
	}
	u.idle[server] = append(u.idle[server], idleConn{c, time.Now()})
	u.count++
}

// close closes the idle sockets; sockets in use are closed when put back.
func (u *upstreams) close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closed = true
	for _, list := range u.idle {
		for _, ic := range list {
			ic.conn.Close()
		}
	}
	u.idle, u.count = nil, 0
}

// bufs are read buffers for upstream answers, each as large as a DNS
// message over UDP can be.
var bufs = sync.Pool{New: func() any { b := make([]byte, maxMessage); return &b }}

// exchange sends query to the upstream and returns its answer: the first
// datagram carrying the query's id (a socket reused after a duplicated
// answer may hold a stale one, which is skipped). A socket that failed or
// timed out is closed, not reused.
func (p *Proxy) exchange(ctx context.Context, upstream netip.AddrPort, query []byte) ([]byte, error) {
	if !upstream.IsValid() {
		return nil, fmt.Errorf("no upstream DNS server")
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	conn, err := p.upstreams.get(ctx, upstream)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", upstream, err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write(query); err != nil {
		conn.Close()
		return nil, fmt.Errorf("upstream %s: %w", upstream, err)
	}
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	buf := *bp
	id := binary.BigEndian.Uint16(query)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("upstream %s: %w", upstream, err)
		}
		if n >= 2 && binary.BigEndian.Uint16(buf) == id {
			resp := bytes.Clone(buf[:n])
			p.upstreams.put(upstream, conn)
			return resp, nil
		}
	}
}

package connectivity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
)

// streamConn is a socket an agent opened (the Connectivity API's Dial),
// as a net.Conn: one Write is one message (one datagram for UDP), a Read
// returns the bytes of received messages. Write deadlines are not
// supported; Close ends the call, and the agent closes the socket.
type streamConn struct {
	stream agentapi.Connectivity_DialClient
	cancel context.CancelFunc
	udp    bool
	local  string
	remote string

	sendMu sync.Mutex
	done   chan struct{} // closed by Close
	once   sync.Once
	msgs   chan []byte // closed when the call ends; err says why
	err    error
	rest   []byte // of the last message, for TCP

	mu       sync.Mutex
	deadline time.Time
}

const chunk = 32 << 10

func dialStream(ctx context.Context, c agentapi.ConnectivityClient, first *agentapi.DialRequest) (net.Conn, error) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stream, err := c.Dial(sctx)
	if err == nil {
		err = stream.Send(first)
	}
	var resp *agentapi.DialResponse
	if err == nil {
		resp, err = recvCtx(ctx, stream)
	}
	if err != nil {
		cancel()
		return nil, errors.New(status.Convert(err).Message())
	}
	sc := &streamConn{stream: stream, cancel: cancel, udp: first.Network == "udp",
		local: resp.LocalAddress, remote: first.Address, msgs: make(chan []byte, 16), done: make(chan struct{})}
	go sc.pump()
	return sc, nil
}

// recvCtx receives one message or gives up when ctx ends.
func recvCtx(ctx context.Context, stream agentapi.Connectivity_DialClient) (*agentapi.DialResponse, error) {
	type res struct {
		r   *agentapi.DialResponse
		err error
	}
	ch := make(chan res, 1)
	go func() { r, err := stream.Recv(); ch <- res{r, err} }()
	select {
	case r := <-ch:
		return r.r, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("connect: %w", ctx.Err())
	}
}

func (c *streamConn) pump() {
	defer close(c.msgs)
	for {
		r, err := c.stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.err = errors.New(status.Convert(err).Message())
			}
			return
		}
		select {
		case c.msgs <- r.Data:
		case <-c.done:
			return
		}
	}
}

func (c *streamConn) Read(p []byte) (int, error) {
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		return n, nil
	}
	c.mu.Lock()
	dl := c.deadline
	c.mu.Unlock()
	var timeout <-chan time.Time
	if !dl.IsZero() {
		t := time.NewTimer(time.Until(dl))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case m, ok := <-c.msgs:
		if !ok {
			if c.err != nil {
				return 0, c.err
			}
			return 0, io.EOF
		}
		n := copy(p, m)
		if !c.udp {
			c.rest = m[n:]
		}
		return n, nil
	case <-timeout:
		return 0, os.ErrDeadlineExceeded
	}
}

func (c *streamConn) Write(p []byte) (int, error) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.udp {
		if err := c.stream.Send(&agentapi.DialRequest{Data: p}); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	for off := 0; off < len(p); off += chunk {
		end := min(off+chunk, len(p))
		if err := c.stream.Send(&agentapi.DialRequest{Data: p[off:end]}); err != nil {
			return off, err
		}
	}
	return len(p), nil
}

func (c *streamConn) Close() error {
	c.sendMu.Lock()
	c.stream.CloseSend() //nolint:errcheck // the call is cancelled next
	c.sendMu.Unlock()
	c.once.Do(func() { close(c.done) })
	c.cancel()
	return nil
}

type streamAddr struct{ network, addr string }

func (a streamAddr) Network() string { return a.network }
func (a streamAddr) String() string  { return a.addr }

func (c *streamConn) network() string {
	if c.udp {
		return "udp"
	}
	return "tcp"
}

func (c *streamConn) LocalAddr() net.Addr  { return streamAddr{c.network(), c.local} }
func (c *streamConn) RemoteAddr() net.Addr { return streamAddr{c.network(), c.remote} }

func (c *streamConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }
func (c *streamConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }

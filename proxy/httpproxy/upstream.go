package httpproxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
)

// upstream is a client connection's own HTTP/1.1 connection to its
// original destination, for requests without a body: written and read by
// the connection's goroutine, without the handoffs of http.Transport's
// reader and writer goroutines (the proxy's hot path: GETs on kept-alive
// connections). Requests with a body still go through the transport, which
// writes the body while it reads an early response.
type upstream struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	stop func() bool // unregisters the close on the proxy's context
}

// dialUpstream connects to the original destination as the transport
// would (Config.DialFrom from the client's address, or Config.Dial).
func (cc *clientConn) dialUpstream(ctx context.Context) (*upstream, error) {
	cfg := &cc.p.cfg
	var c net.Conn
	var err error
	if cfg.DialFrom != nil {
		c, err = cfg.DialFrom(ctx, cc.src.Addr(), "tcp", cc.dst.String())
	} else {
		c, err = cfg.Dial(ctx, "tcp", cc.dst.String())
	}
	if err != nil {
		return nil, err
	}
	return &upstream{conn: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c),
		stop: context.AfterFunc(ctx, func() { c.Close() })}, nil
}

func (u *upstream) close() {
	u.stop()
	u.conn.Close()
}

// closeUpstream drops the connection's upstream connection, if any.
func (cc *clientConn) closeUpstream() {
	if cc.up != nil {
		cc.up.close()
		cc.up = nil
	}
}

// roundTripDirect sends out (no body) on the connection's upstream
// connection, dialling one if needed, and reads the response header. A
// kept connection the destination closed while idle is replaced once for
// requests that may be sent again (GET, HEAD, OPTIONS, TRACE), as
// http.Transport does.
func (cc *clientConn) roundTripDirect(ctx context.Context, out *http.Request) (*http.Response, error) {
	out.Body, out.ContentLength = nil, 0
	for attempt := 0; ; attempt++ {
		if cc.up != nil && !cc.up.idle() {
			cc.closeUpstream() // closed by the destination meanwhile
		}
		reused := cc.up != nil
		if cc.up == nil {
			u, err := cc.dialUpstream(ctx)
			if err != nil {
				return nil, err
			}
			cc.up = u
		}
		resp, err := cc.up.exchange(out)
		if err == nil {
			return resp, nil
		}
		cc.closeUpstream()
		if !reused || attempt > 0 || ctx.Err() != nil || !replayable(out.Method) || !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, err
		}
	}
}

// idle reports whether the kept connection can take a request: nothing
// is buffered or waiting on it, and the destination has not closed it (a
// peek that does not wait).
func (u *upstream) idle() bool {
	if u.br.Buffered() > 0 {
		return false
	}
	sc, ok := u.conn.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	err = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Nothing to read yet: open and quiet. 0 bytes: closed; data:
		// the destination said something unasked.
		alive = n < 0 && (rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK)
		return true
	})
	return err == nil && alive
}

func replayable(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// exchange writes out and reads its response, skipping informational
// (1xx) responses but 101.
func (u *upstream) exchange(out *http.Request) (*http.Response, error) {
	if err := out.Write(u.bw); err != nil {
		return nil, err
	}
	if err := u.bw.Flush(); err != nil {
		return nil, err
	}
	for {
		resp, err := http.ReadResponse(u.br, out)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			resp.Close = true // Upgrade is not forwarded: nothing to switch to
		}
		return resp, nil
	}
}

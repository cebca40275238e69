package connectivity

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// serve starts a TCP and a UDP echo server on ep's address
// (internal/echo, through the driver): each answers first with the
// address it saw the client at and its own name, so a probe can tell an
// unexpected source translation and which backend of a service answered.
func (fx *fixture) serve(ctx context.Context, ep endpoint, name string) error {
	stop, err := fx.drv.serve(ctx, ep, name)
	if err != nil {
		return err
	}
	fx.servers = append(fx.servers, stop)
	return nil
}

func token(n int) []byte {
	b := make([]byte, (n+1)/2)
	rand.Read(b)
	return []byte(hex.EncodeToString(b)[:n])
}

// probeTCP connects from src to dst's echo server, sends size bytes and
// expects them back. wantSource checks the server saw src's own address.
func (fx *fixture) probeTCP(ctx context.Context, src, dst endpoint, size int, wantSource bool) error {
	what := fmt.Sprintf("TCP connection from %s to %s port %d", src, dst, tcpPort)
	ctx, cancel := context.WithTimeout(ctx, fx.opts.Timeout+time.Duration(size/(1<<20))*time.Second)
	defer cancel()
	c, r, seen, err := fx.dialGreeting(ctx, src, dst, what)
	if err != nil {
		return err
	}
	defer c.Close()
	if wantSource {
		if ap, err := netip.ParseAddrPort(seen); err != nil || ap.Addr() != fx.addrFor(dst, src) {
			return fmt.Errorf("%s: the server saw the client as %s, expected %s (source address translated)", what, seen, fx.addrFor(dst, src))
		}
	}
	payload := token(size)
	errc := make(chan error, 1)
	go func() { _, err := c.Write(payload); errc <- err }()
	got := make([]byte, len(payload))
	if n, err := io.ReadFull(r, got); err != nil {
		return fmt.Errorf("%s: sent %d bytes, %d came back before: %w (large segments lost? check the MTU)", what, size, n, err)
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("%s: send %d bytes: %w", what, size, err)
	}
	if !bytes.Equal(got, payload) {
		return fmt.Errorf("%s: sent %d bytes, got different bytes back", what, size)
	}
	return nil
}

// dialGreeting connects from src to dst's TCP echo server and reads its
// greeting; it returns the connection, its reader and the address the
// server saw the client at.
func (fx *fixture) dialGreeting(ctx context.Context, src, dst endpoint, what string) (net.Conn, *bufio.Reader, string, error) {
	addr := netip.AddrPortFrom(fx.addrFor(src, dst), tcpPort)
	c, err := fx.drv.dial(ctx, src, "tcp4", addr)
	if err != nil {
		return nil, nil, "", fmt.Errorf("%s: connect failed: %w (no SYN-ACK came back: packets dropped on the way or on the way back)", what, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	r := bufio.NewReader(c)
	hello, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, nil, "", fmt.Errorf("%s: connected, but the server's greeting never arrived: %w", what, err)
	}
	seen, server, ok := parseGreeting(strings.TrimSpace(hello))
	if !ok || server != dst.name {
		c.Close()
		return nil, nil, "", fmt.Errorf("%s: greeted by %q, expected the echo server of %s", what, strings.TrimSpace(hello), dst.name)
	}
	return c, r, seen, nil
}

// greetedAs connects from src to dst's TCP echo server and returns the
// address the server saw the client at.
func (fx *fixture) greetedAs(ctx context.Context, src, dst endpoint) (netip.AddrPort, error) {
	ctx, cancel := context.WithTimeout(ctx, fx.opts.Timeout)
	defer cancel()
	what := fmt.Sprintf("TCP connection from %s to %s port %d", src, dst, tcpPort)
	c, _, seen, err := fx.dialGreeting(ctx, src, dst, what)
	if err != nil {
		return netip.AddrPort{}, err
	}
	c.Close()
	ap, err := netip.ParseAddrPort(seen)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%s: the server saw %q, not an address", what, seen)
	}
	return ap, nil
}

// probeUDP sends one datagram of size bytes from src to dst's echo server
// and expects it back, up to three tries.
func (fx *fixture) probeUDP(ctx context.Context, src, dst endpoint, size int) error {
	addr := netip.AddrPortFrom(fx.addrFor(src, dst), udpPort)
	what := fmt.Sprintf("UDP datagram of %d bytes from %s to %s port %d", size, src, dst, udpPort)
	c, err := fx.drv.dial(ctx, src, "udp4", addr)
	if err != nil {
		return fmt.Errorf("%s: open socket: %w", what, err)
	}
	defer c.Close()
	payload := token(size)
	buf := make([]byte, 65536)
	var last error
	for try := 1; try <= 3; try++ {
		if _, err := c.Write(payload); err != nil {
			last = fmt.Errorf("send: %w", err)
			continue
		}
		c.SetReadDeadline(time.Now().Add(fx.opts.Timeout / 3))
		n, err := c.Read(buf)
		if err != nil {
			last = fmt.Errorf("no reply: %w", err)
			continue
		}
		_, echo, ok := bytes.Cut(buf[:n], []byte("|"))
		if !ok || !bytes.Equal(echo, payload) {
			return fmt.Errorf("%s: the reply was not the echo of what was sent (%d bytes)", what, n)
		}
		return nil
	}
	return fmt.Errorf("%s: 3 tries, %v (dropped on the way or on the way back)", what, last)
}

// probeICMP pings dst from src once; size > 0 sends that many payload
// bytes with "don't fragment" set.
func (fx *fixture) probeICMP(ctx context.Context, src, dst endpoint, size int) error {
	what := fmt.Sprintf("ICMP echo request from %s to %s", src, dst)
	if size > 0 {
		what = fmt.Sprintf("ICMP echo request of %d bytes (IP packet %d, don't fragment) from %s to %s", size, size+28, src, dst)
	}
	var last error
	for try := 0; try < 2; try++ { // one retry: the very first packet may wait for a neighbour entry
		if last = fx.drv.ping(ctx, src, fx.addrFor(src, dst), size, fx.opts.Timeout); last == nil {
			return nil
		}
	}
	return fmt.Errorf("%s: no echo reply (%v)", what, last)
}

// probeHealth fetches http://<node>:4240/healthz from src and expects
// "ok <node>".
func (fx *fixture) probeHealth(ctx context.Context, src, node endpoint) error {
	url := fmt.Sprintf("http://%s/healthz", netip.AddrPortFrom(node.ip, healthPort))
	what := fmt.Sprintf("HTTP GET %s from %s to the health endpoint of %s", url, src, node)
	hc := fx.httpClient(src)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), node.name) {
		return fmt.Errorf("%s: got %s %q, expected 200 \"ok %s\"", what, resp.Status, strings.TrimSpace(string(body)), node.name)
	}
	return nil
}

// httpClient sends each request on a new connection from inside src.
func (fx *fixture) httpClient(src endpoint) *http.Client {
	return &http.Client{Timeout: fx.opts.Timeout, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ap, err := netip.ParseAddrPort(addr)
			if err != nil {
				return nil, err
			}
			return fx.drv.dial(ctx, src, network+"4", ap)
		},
	}}
}

// parseGreeting splits "from <ip:port> at <name>".
func parseGreeting(s string) (client, server string, ok bool) {
	rest, ok := strings.CutPrefix(s, "from ")
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, " at ")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "rtt") {
			return l
		}
	}
	return "no output"
}

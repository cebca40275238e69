package dnsproxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
)

// ipOrigDstAddr is IP_ORIGDSTADDR / IP_RECVORIGDSTADDR (linux/in.h).
const ipOrigDstAddr = 20

// ListenTransparent opens a UDP socket on addr that receives the queries
// the datapath assigns to it (IP_TRANSPARENT) and learns each one's
// original destination (IP_RECVORIGDSTADDR). Needs CAP_NET_ADMIN.
func ListenTransparent(ctx context.Context, addr netip.AddrPort) (*net.UDPConn, error) {
	c, err := listenUDP(ctx, addr, syscall.IP_TRANSPARENT, ipOrigDstAddr)
	if err != nil {
		return nil, fmt.Errorf("listen transparently on udp %s: %w", addr, err)
	}
	return c, nil
}

// listenUDP binds an IPv4 UDP socket to addr with the given SOL_IP options.
func listenUDP(ctx context.Context, addr netip.AddrPort, opts ...int) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			for _, opt := range opts {
				if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, opt, 1); serr != nil {
					return
				}
			}
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(ctx, "udp4", addr.String())
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// ServeTransparent answers the queries arriving on conn (ListenTransparent)
// until ctx ends or conn fails: each is decided and forwarded as sent to
// its original destination, and the answer goes back from that address
// (a transparent socket bound to it, kept for the next queries), so the
// client sees its DNS server answer.
func (p *Proxy) ServeTransparent(ctx context.Context, conn *net.UDPConn) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	replies := &replySockets{socks: map[netip.AddrPort]*net.UDPConn{}}
	defer replies.close()
	var wg sync.WaitGroup
	defer wg.Wait()
	buf := make([]byte, maxMessage)
	oob := make([]byte, 128)
	for {
		n, oobn, _, src, err := conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("read DNS queries: %w", err)
		}
		dst, ok := origDst(oob[:oobn])
		if !ok {
			p.drop(src, netip.AddrPort{}, "", "no original destination (not redirected by the datapath)")
			continue
		}
		query := append([]byte(nil), buf[:n]...)
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := p.HandleTo(ctx, src, dst, query)
			if resp == nil {
				return
			}
			rc, err := replies.get(ctx, dst)
			if err == nil {
				_, err = rc.WriteToUDPAddrPort(resp, src)
			}
			if err != nil {
				p.drop(src, dst, "", "send the answer: "+err.Error())
			}
		}()
	}
}

// origDst reads IP_ORIGDSTADDR from a message's control data.
func origDst(oob []byte) (netip.AddrPort, bool) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.AddrPort{}, false
	}
	for _, m := range msgs {
		if m.Header.Level != syscall.SOL_IP || m.Header.Type != ipOrigDstAddr || len(m.Data) < 8 {
			continue
		}
		// struct sockaddr_in: family, port (network order), address.
		port := binary.BigEndian.Uint16(m.Data[2:4])
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(m.Data[4:8])), port), true
	}
	return netip.AddrPort{}, false
}

// replySockets are transparent UDP sockets bound to the DNS servers'
// addresses, which answers are sent from.
type replySockets struct {
	mu    sync.Mutex
	socks map[netip.AddrPort]*net.UDPConn
}

func (r *replySockets) get(ctx context.Context, server netip.AddrPort) (*net.UDPConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.socks[server]; ok {
		return c, nil
	}
	c, err := listenUDP(ctx, server, syscall.IP_TRANSPARENT, syscall.IP_FREEBIND)
	if err != nil {
		return nil, fmt.Errorf("answer from %s: %w", server, err)
	}
	r.socks[server] = c
	return c, nil
}

func (r *replySockets) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.socks {
		c.Close()
	}
}

package testenv

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
)

// echoServer is one echo server (TCP or UDP) inside a namespace.
type echoServer struct {
	ln net.Listener
	pc net.PacketConn
	wg sync.WaitGroup
}

// Close stops the server and waits until its goroutines are done.
func (s *echoServer) Close() error {
	if s.ln != nil {
		s.ln.Close()
	}
	if s.pc != nil {
		s.pc.Close()
	}
	s.wg.Wait()
	return nil
}

// ServeEcho listens on addr inside the named namespace (TCP, or UDP when
// udp is set) and echoes. Each TCP connection is first told
// "from <client ip:port> at <name>\n", then echoed; each UDP datagram is
// answered with "<client ip:port>|" and the datagram. So a client sees
// which server answered and the source address it had there. testenv's
// kubelet runs one per containerPort; the connectivity test one per
// endpoint and protocol.
func ServeEcho(netns string, addr netip.AddrPort, udp bool, name string) (io.Closer, error) {
	s := &echoServer{}
	err := InNetNS(netns, func() (err error) {
		if udp {
			s.pc, err = net.ListenPacket("udp4", addr.String())
		} else {
			s.ln, err = net.Listen("tcp4", addr.String())
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("serve %s in %s: %w", addr, netns, err)
	}
	s.wg.Add(1)
	if s.ln != nil {
		go func() {
			defer s.wg.Done()
			for {
				c, err := s.ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					fmt.Fprintf(c, "from %s at %s\n", c.RemoteAddr(), name)
					io.Copy(c, c) //nolint:errcheck // the client checks what comes back
				}()
			}
		}()
		return s, nil
	}
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, from, err := s.pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.pc.WriteTo(append([]byte(from.String()+"|"), buf[:n]...), from) //nolint:errcheck // the client retries
		}
	}()
	return s, nil
}

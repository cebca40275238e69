package echo

import (
	"fmt"
	"io"
	"net"
	"sync"
)

// server is one echo server (TCP or UDP).
type server struct {
	ln net.Listener
	pc net.PacketConn
	wg sync.WaitGroup
}

// Close stops the server and waits until its goroutines are done.
func (s *server) Close() error {
	if s.ln != nil {
		s.ln.Close()
	}
	if s.pc != nil {
		s.pc.Close()
	}
	s.wg.Wait()
	return nil
}

// ServeTCP greets and echoes every connection ln accepts until closed.
// Closing the result closes ln.
func ServeTCP(ln net.Listener, name string) io.Closer {
	s := &server{ln: ln}
	s.wg.Add(1)
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
	return s
}

// ServeUDP answers every datagram pc receives until closed. Closing the
// result closes pc.
func ServeUDP(pc net.PacketConn) io.Closer {
	s := &server{pc: pc}
	s.wg.Add(1)
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
	return s
}

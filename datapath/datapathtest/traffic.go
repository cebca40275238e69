package datapathtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ServeTCP listens on port in the pod's namespace and runs handle for
// every connection until the test ends.
func (p *Pod) ServeTCP(port uint16, handle func(net.Conn)) {
	t := p.Node.lab.t
	t.Helper()
	var ln net.Listener
	err := InNS(p.NS, func() (err error) {
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", p.Name, err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

// ServeName answers every connection on port with the pod's name.
func (p *Pod) ServeName(port uint16) {
	p.ServeTCP(port, func(c net.Conn) { io.WriteString(c, p.Name) })
}

// ServeEcho echoes every connection on port.
func (p *Pod) ServeEcho(port uint16) {
	p.ServeTCP(port, func(c net.Conn) { io.Copy(c, c) })
}

// Dial connects from the pod's namespace (no cgroup: the socket load
// balancer does not apply; use Fetch for services).
func (p *Pod) Dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	return dial(ctx, p.NS, addr)
}

func dial(ctx context.Context, ns string, addr netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := InNS(ns, func() (err error) {
		d := net.Dialer{}
		c, err = d.DialContext(ctx, "tcp4", addr.String())
		return err
	})
	return c, err
}

// Ping sends one echo request from the pod to ip.
func (p *Pod) Ping(ctx context.Context, ip netip.Addr) error {
	_, err := Run(ctx, p.NS, "", "ping", "-c", "1", "-W", "1", ip.String())
	return err
}

// Fetch connects from a process in the pod's namespace and its node's
// cgroup (so the socket load balancer applies) and returns what the
// server sent.
func (p *Pod) Fetch(ctx context.Context, addr netip.AddrPort) (string, error) {
	return fetch(ctx, p.NS, p.Node.Cgroup, addr)
}

// Fetch connects from the node's own namespace and cgroup.
func (n *Node) Fetch(ctx context.Context, addr netip.AddrPort) (string, error) {
	return fetch(ctx, n.NS, n.Cgroup, addr)
}

func fetch(ctx context.Context, ns, cgroup string, addr netip.AddrPort) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	script := fmt.Sprintf("exec 3<>/dev/tcp/%s/%d && cat <&3", addr.Addr(), addr.Port())
	out, err := Run(ctx, ns, cgroup, "bash", "-c", script)
	return strings.TrimSpace(string(out)), err
}

// Eventually polls cond until it returns nil or the deadline passes,
// returning the last error.
func Eventually(ctx context.Context, timeout time.Duration, cond func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = cond(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Addr is the pod's address with port.
func (p *Pod) Addr(port uint16) netip.AddrPort { return netip.AddrPortFrom(p.IP, port) }

// ServeUDPName answers every datagram on port with the pod's name.
func (p *Pod) ServeUDPName(port uint16) {
	t := p.Node.lab.t
	t.Helper()
	var conn *net.UDPConn
	err := InNS(p.NS, func() (err error) {
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{Port: int(port)})
		return err
	})
	if err != nil {
		t.Fatalf("listen udp in %s: %v", p.Name, err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { conn.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			_, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			conn.WriteToUDPAddrPort([]byte(p.Name), from)
		}
	}()
}

// JoinCgroup moves the whole test process into the node's cgroup, so the
// sockets it creates meet the node's socket load balancer, until the
// returned function (also run at cleanup) moves it back.
func (n *Node) JoinCgroup() (leave func()) {
	t := n.lab.t
	t.Helper()
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	root, err := CgroupRoot()
	if err != nil {
		t.Fatal(err)
	}
	var orig string
	for _, line := range strings.Split(string(self), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			orig = filepath.Join(root, rest)
		}
	}
	if orig == "" {
		t.Fatalf("no cgroup v2 entry in /proc/self/cgroup: %q", self)
	}
	move := func(dir string) error {
		return os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644)
	}
	if err := move(n.Cgroup); err != nil {
		t.Fatalf("join cgroup %s: %v", n.Cgroup, err)
	}
	var once sync.Once
	leave = func() {
		once.Do(func() {
			if err := move(orig); err != nil {
				t.Errorf("return to cgroup %s: %v", orig, err)
			}
		})
	}
	t.Cleanup(leave)
	return leave
}

// Dial connects from the node's own namespace.
func (n *Node) Dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	return dial(ctx, n.NS, addr)
}

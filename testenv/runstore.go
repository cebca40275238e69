package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/weftnet/weft/kvstore/etcdserver"
)

// StoreOptions configure RunStore, the foreground store process behind
// `weft testenv run-store`.
type StoreOptions struct {
	Backend string // etcd or consul
	DataDir string
	// Listen is the client URL, e.g. http://192.168.0.11:2379 (etcd) or
	// http://192.168.0.11:8500 (consul).
	Listen string
	// ConsulBinary runs the consul backend.
	ConsulBinary string
	// ForwardFD, when positive, is an inherited listening socket (opened by
	// `testenv up` in the host namespace) whose connections are forwarded
	// to Listen, so the CLI reaches the store from the host namespace.
	ForwardFD int
	// Members > 1 runs member Member (0-based) of a static etcd cluster of
	// Members members on Listen's address, member m on Listen's port +10m
	// (its peer port +1); only member 0 forwards.
	Members, Member int
}

// RunStore runs the store until ctx ends: an embedded etcd member, or a
// Consul dev agent as a child process (killed with this process).
func RunStore(ctx context.Context, opts StoreOptions, log *slog.Logger) error {
	u, err := url.Parse(opts.Listen)
	if err != nil || u.Scheme != "http" || u.Port() == "" {
		return fmt.Errorf("store listen URL %q: accepted is http://<ip>:<port>", opts.Listen)
	}
	if opts.DataDir == "" {
		return errors.New("run store: --data-dir is empty; give a directory for the store's data")
	}
	var stop func()
	switch opts.Backend {
	case StoreEtcd:
		port, _ := strconv.Atoi(u.Port())
		peer := func(m int) string { return "http://" + net.JoinHostPort(u.Hostname(), strconv.Itoa(port+10*m+1)) }
		eo := etcdserver.Options{
			Name:       "testenv",
			DataDir:    opts.DataDir,
			ClientURLs: []string{opts.Listen},
			PeerURLs:   []string{peer(0)},
		}
		if opts.Members > 1 {
			if opts.Member < 0 || opts.Member >= opts.Members {
				return fmt.Errorf("run store: --member %d: accepted is 0 to %d", opts.Member, opts.Members-1)
			}
			var initial []string
			for m := 0; m < opts.Members; m++ {
				initial = append(initial, fmt.Sprintf("m%d=%s", m, peer(m)))
			}
			eo.Name = fmt.Sprintf("m%d", opts.Member)
			eo.DataDir = filepath.Join(opts.DataDir, eo.Name)
			eo.ClientURLs = []string{"http://" + net.JoinHostPort(u.Hostname(), strconv.Itoa(port+10*opts.Member))}
			eo.PeerURLs = []string{peer(opts.Member)}
			eo.InitialCluster = strings.Join(initial, ",")
			eo.ClusterToken = "testenv-" + u.Hostname()
			if opts.Member != 0 {
				opts.ForwardFD = 0
			}
		}
		srv, err := etcdserver.Start(ctx, eo)
		if err != nil {
			return err
		}
		stop = srv.Stop
	case StoreConsul:
		s, err := startConsul(ctx, opts, u, log)
		if err != nil {
			return err
		}
		stop = s
	default:
		return fmt.Errorf("store backend %q: accepted are %q and %q", opts.Backend, StoreEtcd, StoreConsul)
	}
	defer stop()
	log.Info("store ready", "backend", opts.Backend, "listen", opts.Listen)
	if opts.ForwardFD > 0 {
		ln, err := net.FileListener(os.NewFile(uintptr(opts.ForwardFD), "forward"))
		if err != nil {
			return fmt.Errorf("use inherited listener fd %d: %w", opts.ForwardFD, err)
		}
		go forward(ctx, ln, u.Host, log)
	}
	<-ctx.Done()
	return nil
}

// startConsul runs a Consul dev agent bound to the listen address and
// waits for its leader.
func startConsul(ctx context.Context, opts StoreOptions, u *url.URL, log *slog.Logger) (func(), error) {
	if opts.ConsulBinary == "" {
		return nil, errors.New("run consul store: --consul-binary is empty")
	}
	ip := u.Hostname()
	cmd := exec.Command(opts.ConsulBinary, "agent", "-dev",
		"-data-dir", opts.DataDir, "-node", "testenv-"+ip,
		"-bind", ip, "-client", ip, "-http-port", u.Port(),
		"-serf-wan-port", "-1", "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
		"-log-level", "warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start consul %s: %w", opts.ConsulBinary, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() //nolint:errcheck // exit shows in the log
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		if err := StoreReady(wctx, StoreConsul, opts.Listen); err == nil {
			return stop, nil
		} else if wctx.Err() != nil {
			stop()
			return nil, fmt.Errorf("wait for consul at %s: %w", opts.Listen, err)
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("start consul at %s: it exited (see the store log)", opts.Listen)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// forward copies every connection accepted on ln to target.
func forward(ctx context.Context, ln net.Listener, target string, log *slog.Logger) {
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			var d net.Dialer
			t, err := d.DialContext(ctx, "tcp", target)
			if err != nil {
				log.Warn("forward to store", "target", target, "err", err)
				return
			}
			defer t.Close()
			done := make(chan struct{}, 2)
			cp := func(dst, src net.Conn) {
				io.Copy(dst, src) //nolint:errcheck // either side closing ends the pair
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go cp(t, c)
			go cp(c, t)
			<-done
			<-done
		}()
	}
}

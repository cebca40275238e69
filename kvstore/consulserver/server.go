package consulserver

import (
	"context"
	"errors"
	"fmt"
	"github.com/weftnet/weft/internal/childproc"
	"io"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/weftnet/weft/internal/toolcache"
)

// Options configure one agent.
type Options struct {
	// DataDir is the agent's working directory and -data-dir (a dev agent
	// still keeps keys and sessions in memory). Required: t.TempDir() suits.
	DataDir string
	// Binary is the consul executable. Empty: toolcache.Ensure builds or
	// finds the pinned version.
	Binary string
	// Log receives the agent's output and build progress. Nil discards it.
	Log io.Writer
	// StartTimeout bounds waiting for a leader after each start. Zero: 60s.
	StartTimeout time.Duration
	// HCL is extra agent configuration, e.g. an acl block.
	HCL string
	// Token is used by the readiness check; needed when HCL enables ACLs
	// with default policy deny (give the initial management token).
	Token string
}

// Server is one running dev-mode agent.
type Server struct {
	opts  Options
	ports ports

	mu   sync.Mutex
	proc *childproc.Process // nil while stopped
}

// Start launches an agent and waits until it has elected itself leader and
// registered its node (needed for sessions).
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 60 * time.Second
	}
	if opts.Binary == "" {
		bin, err := toolcache.Ensure(ctx, toolcache.Consul(), opts.Log)
		if err != nil {
			return nil, fmt.Errorf("find consul binary: %w", err)
		}
		opts.Binary = bin
	}
	if opts.DataDir == "" {
		return nil, errors.New("start consul agent: Options.DataDir is empty; give a directory such as t.TempDir()")
	}
	s := &Server{opts: opts}
	// Free ports can be taken by someone else between picking and binding:
	// retry with fresh ones a few times.
	var errs []error
	for range 3 {
		p, err := pickPorts()
		if err != nil {
			return nil, err
		}
		s.ports = p
		err = s.start(ctx)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// Endpoint is the agent's HTTP API URL, e.g. "http://127.0.0.1:8500".
func (s *Server) Endpoint() string {
	return "http://127.0.0.1:" + strconv.Itoa(s.ports.http)
}

// node is the agent's node name, unique among agents on this host.
func (s *Server) node() string { return "weft-test-" + strconv.Itoa(s.ports.http) }

func (s *Server) args() []string {
	args := []string{
		"agent", "-dev",
		"-data-dir", s.opts.DataDir,
		"-node", s.node(),
		"-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-http-port", strconv.Itoa(s.ports.http),
		"-serf-lan-port", strconv.Itoa(s.ports.serfLAN),
		"-server-port", strconv.Itoa(s.ports.server),
		"-serf-wan-port", "-1", "-dns-port", "-1",
		"-grpc-port", "-1", "-grpc-tls-port", "-1",
		"-log-level", "warn",
	}
	if s.opts.HCL != "" {
		args = append(args, "-hcl", s.opts.HCL)
	}
	return args
}

func (s *Server) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return fmt.Errorf("start consul agent at %s: already running", s.Endpoint())
	}
	// The agent outlives ctx, which only bounds the start.
	p, err := childproc.Start(s.opts.Binary, s.args(), s.opts.DataDir, s.opts.Log)
	if err != nil {
		return fmt.Errorf("start consul agent: %w", err)
	}
	s.proc = p

	wctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	if err := waitReady(wctx, s.Endpoint(), s.node(), s.opts.Token, p.Exited()); err != nil {
		s.stopLocked(syscall.SIGKILL, 0)
		if p.Err() != nil {
			err = fmt.Errorf("%w (agent exited: %v)", err, p.Err())
		}
		return fmt.Errorf("start consul agent at %s: %w", s.Endpoint(), err)
	}
	return nil
}

// Stop sends SIGTERM, then SIGKILL after 10s, and waits for the agent to exit.
// Stopping a stopped agent does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked(syscall.SIGTERM, 10*time.Second)
}

// Kill ends the agent with SIGKILL at once, as a crash would, and waits for it.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked(syscall.SIGKILL, 0)
}

// Restart stops the agent and starts it again on the same ports. A dev agent
// comes back empty: every key and session is gone.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start(ctx)
}

func (s *Server) stopLocked(sig syscall.Signal, grace time.Duration) error {
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	if killed := p.Stop(sig, grace); !killed {
		return nil
	}
	return fmt.Errorf("stop consul agent at %s: still running %v after SIGTERM, killed", s.Endpoint(), grace)
}

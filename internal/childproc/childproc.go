// Package childproc runs a helper program (a Consul agent, etcd,
// kube-apiserver) as a child that dies with the caller: in its own process
// group, with PR_SET_PDEATHSIG, and stopped group-wide with a grace period.
//
// It depends only on the standard library.
package childproc

import (
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// Process is one run of a program.
type Process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's result, valid after exited
}

// Start runs bin with args in dir, both outputs to log.
func Start(bin string, args []string, dir string, log io.Writer) (*Process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	// PR_SET_PDEATHSIG fires when the forking OS thread exits, not the
	// process: fork from a locked thread that lives as long as the child.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return p, nil
}

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is how the process exited; valid once Exited is closed.
func (p *Process) Err() error { return p.err }

// Stop sends sig to the process group and waits for the process to exit;
// unless sig is SIGKILL, the group is killed after grace. killed reports
// that it had to be. Stopping a nil or exited process does nothing.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) (killed bool) {
	if p == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(-pid, sig)
	if sig != syscall.SIGKILL {
		select {
		case <-p.exited:
			return false
		case <-time.After(grace):
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		killed = true
	}
	<-p.exited
	return killed
}

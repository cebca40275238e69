package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MarkerVar is set to the environment's name in every process testenv
// starts, so Down finds them by scanning /proc even without env.json.
const MarkerVar = "WEFT_TESTENV"

// process says how to start one background process.
type process struct {
	args    []string // argv; args[0] is the binary
	netns   string   // named namespace to start in; empty: the caller's
	cgroup  string   // cgroup directory to start in; empty: the caller's
	log     string   // file receiving stdout and stderr
	pidFile string   // written once started
	env     []string // added to the environment
	files   []*os.File
}

// StartDaemon starts args in the named network namespace (empty: the
// caller's), detached, with stdout and stderr appended to logFile and its
// pid written to pidFile, marked with the environment so Down ends it. It
// returns the pid and does not wait.
func (e *Env) StartDaemon(args []string, netns, logFile, pidFile string) (int, error) {
	if len(args) == 0 {
		return 0, fmt.Errorf("start daemon in environment %q: no command given", e.Name)
	}
	return e.startDetached(process{args: args, netns: netns, log: logFile, pidFile: pidFile})
}

// startDetached starts p in its own session, detached from the caller's
// terminal, and returns its pid. The caller need not wait for it: a
// goroutine reaps it when it exits while the caller still lives.
func (e *Env) startDetached(p process) (int, error) {
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("open log %s: %w", p.log, err)
	}
	defer logf.Close()
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Env = append(append(os.Environ(), MarkerVar+"="+e.Name), p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = p.files
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := startCmd(cmd, p.netns, p.cgroup); err != nil {
		return 0, fmt.Errorf("start %s: %w", filepath.Base(p.args[0]), err)
	}
	pid := cmd.Process.Pid
	go cmd.Wait() //nolint:errcheck // reaps the child; its exit shows in its log
	if p.pidFile != "" {
		if err := os.WriteFile(p.pidFile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
			return pid, fmt.Errorf("write pid file %s: %w", p.pidFile, err)
		}
	}
	return pid, nil
}

// startCmd starts cmd inside the named namespace (the child inherits the
// namespace of the locked thread that forks it), in cgroup when given.
// The cgroup is joined by the kernel at clone time, before the program runs.
func startCmd(cmd *exec.Cmd, ns, cgroup string) error {
	if cgroup != "" {
		f, err := os.Open(cgroup)
		if err != nil {
			return fmt.Errorf("open cgroup %s: %w", cgroup, err)
		}
		defer f.Close()
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(f.Fd())
	}
	if ns == "" {
		return cmd.Start()
	}
	return InNetNS(ns, cmd.Start)
}

// runIn runs cmd to completion inside ns and cgroup.
func runIn(cmd *exec.Cmd, ns, cgroup string) error {
	if err := startCmd(cmd, ns, cgroup); err != nil {
		return err
	}
	return cmd.Wait()
}

// readPID reads a pid file; 0 when missing or garbled.
func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// alive reports whether pid runs (zombies count as gone).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// markedPIDs scans /proc for processes whose environment holds
// WEFT_TESTENV=<name>, except the caller and its ancestors.
func markedPIDs(name string) []int {
	want := []byte(MarkerVar + "=" + name)
	skip := ancestors()
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || skip[pid] {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(kv, want) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// ancestors is the caller and its parents.
func ancestors() map[int]bool {
	out := map[int]bool{}
	for pid := os.Getpid(); pid > 1 && !out[pid]; {
		out[pid] = true
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			break
		}
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			break
		}
		pid, _ = strconv.Atoi(f[1])
	}
	return out
}

// terminate sends SIGTERM to pids, waits up to grace for them to exit,
// then SIGKILLs the rest and waits for them.
func terminate(pids []int, grace time.Duration) error {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	if waitGone(pids, grace) {
		return nil
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if waitGone(pids, 10*time.Second) {
		return nil
	}
	var left []string
	for _, pid := range pids {
		if alive(pid) {
			left = append(left, strconv.Itoa(pid))
		}
	}
	return fmt.Errorf("end processes: %s still running after SIGKILL", strings.Join(left, ", "))
}

// waitGone polls until no pid is alive or timeout passes.
func waitGone(pids []int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		left := false
		for _, pid := range pids {
			left = left || alive(pid)
		}
		if !left {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, not synchronising
	}
}

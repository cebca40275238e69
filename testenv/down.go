package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Down removes everything of this environment.
func (e *Env) Down(ctx context.Context) error {
	return Down(ctx, e.Name, e.progress, e.log)
}

// Down removes everything environment name created: processes (by pid
// file and by the WEFT_TESTENV marker in /proc), namespaces, the BPF pin
// directory, cgroups and the state directory. It needs no env.json, so it
// also cleans up after a crash, and it is idempotent.
func Down(ctx context.Context, name string, progress io.Writer, log *slog.Logger) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	e, err := Load(name, progress, log)
	if err != nil {
		e = &Env{Name: name, Dir: Dir(name)}
		e.setOutput(progress, log)
	}
	pins := filepath.Join(BPFRoot, "weft-testenv-"+name)
	cg := filepath.Join(CgroupRoot(), "weft-testenv-"+name)
	if !e.anythingLeft(pins, cg) {
		e.step("there is no environment %q (no state, namespaces, processes, BPF pins or cgroup): nothing to remove", name)
		return nil
	}
	var errs []error
	if err := e.endProcesses(); err != nil {
		errs = append(errs, err)
	}
	if err := e.deleteNamespaces(); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(pins); err != nil {
		errs = append(errs, fmt.Errorf("remove BPF pins %s: %w", pins, err))
	}
	if err := removeCgroup(cg); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(e.Dir); err != nil {
		errs = append(errs, fmt.Errorf("remove state %s: %w", e.Dir, err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("tear down environment %q: %w", name, errors.Join(errs...))
	}
	e.step("environment %q is down", name)
	return nil
}

// anythingLeft reports whether the environment left anything on this host:
// its state directory, BPF pins, cgroup, a namespace or a marked process.
func (e *Env) anythingLeft(pins, cgroup string) bool {
	for _, p := range []string{e.Dir, pins, cgroup} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	if ns, err := listNetNS("weft-" + e.Name + "-"); err != nil || len(ns) > 0 {
		return true // when in doubt, tear down
	}
	return len(markedPIDs(e.Name)) > 0
}

// endProcesses stops agents first (SIGTERM, so they release their leases
// while the store still runs), then everything else that is marked.
func (e *Env) endProcesses() error {
	var agents []int
	for _, n := range e.Nodes {
		if pid := readPID(n.PIDFile); alive(pid) && marked(pid, e.Name) {
			agents = append(agents, pid)
		}
	}
	var errs []error
	if len(agents) > 0 {
		e.step("stopping %d agent(s)", len(agents))
		if err := terminate(agents, 10*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	rest := markedPIDs(e.Name)
	for _, c := range e.Clusters {
		if pid := readPID(c.StorePIDFile); alive(pid) && marked(pid, e.Name) && !slices.Contains(rest, pid) {
			rest = append(rest, pid)
		}
	}
	if len(rest) > 0 {
		e.step("stopping %d process(es) marked %s=%s", len(rest), MarkerVar, e.Name)
		if err := terminate(rest, 10*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// marked reports whether pid carries this environment's marker (a pid
// file may be stale and name an unrelated process by now).
func marked(pid int, env string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	return slices.Contains(strings.Split(string(b), "\x00"), MarkerVar+"="+env)
}

// deleteNamespaces removes the recorded namespaces and every namespace
// named weft-<env>-*, except those of other environments whose names
// start with "<env>-".
func (e *Env) deleteNamespaces() error {
	names := []string{underlayNS(e.Name)}
	for _, n := range e.Nodes {
		names = append(names, n.NetNS)
	}
	for _, p := range e.Pods {
		names = append(names, p.NetNS)
	}
	found, err := listNetNS("weft-" + e.Name + "-")
	if err != nil {
		return err
	}
	others := otherEnvPrefixes(e.Name)
	for _, ns := range found {
		if !slices.ContainsFunc(others, func(p string) bool { return strings.HasPrefix(ns, p) }) {
			names = append(names, ns)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	var errs []error
	n := 0
	for _, ns := range names {
		if _, err := os.Stat(NetNSPath(ns)); err != nil {
			continue
		}
		if err := DeleteNetNS(ns); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if n > 0 {
		e.step("deleted %d namespace(s)", n)
	}
	return errors.Join(errs...)
}

// otherEnvPrefixes are the namespace prefixes of recorded environments
// whose names extend name ("weft-<name>-x-" for environment "<name>-x").
func otherEnvPrefixes(name string) []string {
	ents, _ := os.ReadDir(StateRoot)
	var out []string
	for _, ent := range ents {
		if ent.IsDir() && strings.HasPrefix(ent.Name(), name+"-") {
			out = append(out, "weft-"+ent.Name()+"-")
		}
	}
	return out
}

// removeCgroup removes a cgroup directory tree bottom-up (cgroupfs only
// lets empty directories go). A missing one is not an error.
func removeCgroup(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("walk cgroup %s: %w", dir, err)
	}
	// Processes testenv did not mark (a daemon that cleared its
	// environment) would keep the cgroups busy: cgroup.kill ends them all.
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.kill"), []byte("1"), 0o644); err == nil {
			waitCgroupEmpty(d, 5*time.Second)
		}
	}
	var errs []error
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w (processes still inside?)", dirs[i], err))
		}
	}
	return errors.Join(errs...)
}

// waitCgroupEmpty polls until cgroup.procs of dir is empty or timeout.
func waitCgroupEmpty(dir string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil || len(strings.TrimSpace(string(b))) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond) // polling a condition
	}
}

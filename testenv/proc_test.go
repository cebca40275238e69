package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testgate"
)

// TestMarkedProcesses: processes carrying WEFT_TESTENV=<env> are found by
// exactly that name, never a prefix of it, and end with terminate.
func TestMarkedProcesses(t *testing.T) {
	name := "proc-" + strconv.Itoa(os.Getpid())
	start := func(env string) *exec.Cmd {
		cmd := exec.Command("sleep", "600")
		cmd.Env = append(os.Environ(), MarkerVar+"="+env)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go cmd.Wait() //nolint:errcheck // reaps it
		t.Cleanup(func() { cmd.Process.Kill() })
		return cmd
	}
	mine, longer := start(name), start(name+"-x")
	got := markedPIDs(name)
	if !slices.Contains(got, mine.Process.Pid) || slices.Contains(got, longer.Process.Pid) {
		t.Fatalf("markedPIDs(%q) = %v: expected %d and not %d", name, got, mine.Process.Pid, longer.Process.Pid)
	}
	if !marked(mine.Process.Pid, name) || marked(longer.Process.Pid, name) {
		t.Errorf("marked: wrong for %d or %d", mine.Process.Pid, longer.Process.Pid)
	}
	if err := terminate([]int{mine.Process.Pid}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if alive(mine.Process.Pid) || !alive(longer.Process.Pid) {
		t.Errorf("after terminate: %d alive=%v (expected gone), %d alive=%v (expected running)",
			mine.Process.Pid, alive(mine.Process.Pid), longer.Process.Pid, alive(longer.Process.Pid))
	}
}

// TestRemoveCgroup: a cgroup tree with an unmarked process inside is
// emptied (cgroup.kill) and removed bottom-up; a missing one is no error.
func TestRemoveCgroup(t *testing.T) {
	testgate.Root(t)
	dir := filepath.Join(CgroupRoot(), "weft-testenv-rmcg-"+strconv.Itoa(os.Getpid()))
	leaf := filepath.Join(dir, "c1-n1")
	if err := os.MkdirAll(leaf, 0o755); err != nil {
		testgate.Skip(t, "cannot create cgroups: "+err.Error())
	}
	t.Cleanup(func() { removeCgroup(dir) })
	cmd := exec.Command("sleep", "600")
	if err := startCmd(cmd, "", leaf); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait() //nolint:errcheck // reaps it
	if err := removeCgroup(dir); err != nil {
		t.Fatalf("removeCgroup: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists", dir)
	}
	if !waitGone([]int{cmd.Process.Pid}, 5*time.Second) {
		t.Errorf("the process in the cgroup still runs")
	}
	if err := removeCgroup(dir); err != nil {
		t.Errorf("removeCgroup of a missing cgroup: %v", err)
	}
}

package e2e

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/weftnet/weft/testenv"
)

// TestDownAfterCrash: with env.json gone (as after a crash of `testenv
// up`), Down still ends every marked process (agents, stores, a process
// left in a pod) and removes namespaces, BPF pins, cgroups and state; a
// second Down is a no-op that says there is no such environment; Up
// refuses an existing name.
func TestDownAfterCrash(t *testing.T) {
	spec := testenv.DefaultSpec()
	spec.KVStore = testenv.StoreConsul // the store with a child process
	e := up(t, "crash", spec)
	ctx := context.Background()
	if _, err := e.AddPod(ctx, testenv.PodSpec{Name: "left", Node: "c1-n2"}); err != nil {
		t.Fatal(err)
	}
	tg, err := e.Target("pod/left")
	if err != nil {
		t.Fatal(err)
	}
	stray := exec.Command("sleep", "3600")
	if err := tg.Start(stray); err != nil {
		t.Fatal(err)
	}
	go stray.Wait() //nolint:errcheck // reaped when Down kills it

	again := spec
	again.Name, again.Bin = e.Name, e.Bin
	if _, err := testenv.Up(ctx, again); !errors.Is(err, testenv.ErrExists) {
		t.Fatalf("Up on an existing environment: %v, expected ErrExists", err)
	}

	if err := os.Remove(filepath.Join(e.Dir, "env.json")); err != nil {
		t.Fatal(err)
	}
	if err := testenv.Down(ctx, e.Name, testWriter{t}, nil); err != nil {
		t.Fatalf("Down without env.json: %v", err)
	}
	var left []string
	ents, _ := os.ReadDir(testenv.NetNSPath(""))
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), "weft-"+e.Name+"-") {
			left = append(left, "netns "+ent.Name())
		}
	}
	for _, p := range []string{e.Dir, e.BPFFS, e.Cgroup} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			left = append(left, p)
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		env, err := os.ReadFile(filepath.Join("/proc", p.Name(), "environ"))
		if err == nil && strings.Contains("\x00"+string(env)+"\x00", "\x00"+testenv.MarkerVar+"="+e.Name+"\x00") {
			cmd, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
			left = append(left, "process "+p.Name()+" "+strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	if len(left) > 0 {
		t.Errorf("left behind after Down:\n%s", strings.Join(left, "\n"))
	}
	// A second Down finds nothing, and says so truthfully.
	var out strings.Builder
	if err := testenv.Down(ctx, e.Name, &out, nil); err != nil {
		t.Errorf("second Down: %v", err)
	}
	if want := "there is no environment " + strconv.Quote(e.Name); !strings.Contains(out.String(), want) || strings.Contains(out.String(), "is down") {
		t.Errorf("second Down printed %q, want a line containing %q", out.String(), want)
	}
}

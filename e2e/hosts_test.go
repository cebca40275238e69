package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/hosttest"
	"github.com/weftnet/weft/internal/testgate"
	"github.com/weftnet/weft/testenv"
)

// mountNS is a private mount namespace held open by a sleeping process;
// commands join it with nsenter. Mounts made in it never reach the host,
// and vanish with it.
type mountNS struct{ pid int }

// privateMounts starts a mount namespace where /sys/fs/bpf is the plain
// directory of a fresh host (every bpffs taken off it), or, with bpffs,
// holds a bpffs of its own (empty, not the host's). It ends with the test.
func privateMounts(t *testing.T, bpffs bool) mountNS {
	t.Helper()
	script := hosttest.UnshareScript
	if bpffs {
		script += "mount -t bpf bpf /sys/fs/bpf || exit 98\n"
	}
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script+"echo ready; exec sleep 3600")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start private mount namespace: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait() //nolint:errcheck // killed
	})
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("private mount namespace did not come up (%q)", line)
	}
	return mountNS{pid: cmd.Process.Pid}
}

// run runs args inside the namespace and returns the combined output.
func (m mountNS) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--mount=/proc/" + fmt.Sprint(m.pid) + "/ns/mnt", "--"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// leftovers lists what environment name left on the host: namespaces,
// its state directory and cgroup, and processes marked with it.
func leftovers(name string) []string {
	var left []string
	ents, _ := os.ReadDir(testenv.NetNSPath(""))
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), "weft-"+name+"-") {
			left = append(left, "netns "+ent.Name())
		}
	}
	for _, p := range []string{testenv.Dir(name), filepath.Join(testenv.CgroupRoot(), "weft-testenv-"+name)} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			left = append(left, p)
		}
	}
	marker := "\x00" + testenv.MarkerVar + "=" + name + "\x00"
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		env, err := os.ReadFile(filepath.Join("/proc", p.Name(), "environ"))
		if err == nil && strings.Contains("\x00"+string(env)+"\x00", marker) {
			left = append(left, "process "+p.Name())
		}
	}
	return left
}

// TestTestenvFreshHost: `weft testenv up` works on a host whose
// /sys/fs/bpf is not a bpffs (a fresh Debian machine: it mounts one), and
// where one is already mounted; pods on two nodes reach each other; `down`
// leaves nothing behind, pins included.
func TestTestenvFreshHost(t *testing.T) {
	testgate.Root(t)
	testgate.Short(t)
	bin := binaries(t)
	for _, tc := range []struct {
		name  string
		bpffs bool
	}{{"no bpffs", false}, {"bpffs mounted", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ns := privateMounts(t, tc.bpffs)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			name := envName("fresh")
			weft := func(args ...string) string {
				t.Helper()
				out, err := ns.run(ctx, append([]string{bin.Weft}, args...)...)
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			t.Cleanup(func() { ns.run(context.Background(), bin.Weft, "testenv", "down", "--name", name) }) //nolint:errcheck // after a failure
			t.Log(weft("testenv", "up", "--name", name, "--nodes", "2"))
			if out, err := ns.run(ctx, "stat", "-f", "-c", "%T", "/sys/fs/bpf"); strings.TrimSpace(out) != "bpf_fs" {
				t.Errorf("/sys/fs/bpf after up: %s %v, want bpf_fs", out, err)
			}
			weft("--name", name, "status")
			weft("--name", name, "testenv", "pod", "add", "a", "--node", "c1-n1")
			weft("--name", name, "testenv", "pod", "add", "b", "--node", "c1-n2")
			e, err := testenv.Load(name, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := e.Pod("b")
			if err != nil {
				t.Fatal(err)
			}
			weft("--name", name, "testenv", "exec", "pod/a", "--", "ping", "-c", "2", "-W", "5", b.IP)
			weft("testenv", "down", "--name", name)
			pins := filepath.Join(testenv.BPFRoot, "weft-testenv-"+name)
			if out, err := ns.run(ctx, "sh", "-c", "! test -e "+pins); err != nil {
				t.Errorf("BPF pins left behind in %s: %s", pins, out)
			}
			if left := leftovers(name); len(left) > 0 {
				t.Errorf("left behind after down:\n%s", strings.Join(left, "\n"))
			}
		})
	}
}

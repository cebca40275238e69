package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testgate"
	"github.com/weftnet/weft/testenv"
)

// build holds the binaries built once for the whole run.
type build struct {
	once sync.Once
	dir  string
	bin  testenv.Binaries
	err  error
}

var built build // removed by TestMain

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// binaries builds weft, weft-agent, weft-cni and cnitool once per run.
func binaries(t testing.TB) testenv.Binaries {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "weft-e2e-bin-")
		if built.err != nil {
			return
		}
		cmd := exec.Command(goBinary(), "build", "-o", built.dir+"/",
			"github.com/weftnet/weft/cmd/weft", "github.com/weftnet/weft/cmd/weft-agent",
			"github.com/weftnet/weft/cmd/weft-cni", "github.com/containernetworking/cni/cnitool")
		out, err := cmd.CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %w: %s", err, out)
			return
		}
		built.bin = testenv.BinariesIn(built.dir)
	})
	if built.err != nil {
		t.Fatalf("build binaries: %v", built.err)
	}
	return built.bin
}

// envName is tag plus a random suffix, so runs never share an environment.
func envName(tag string) string {
	b := make([]byte, 2)
	rand.Read(b)
	return tag + "-" + hex.EncodeToString(b)
}

// up brings an environment up for t and registers its removal. On failure
// the agents' last log lines go to the test log before Down removes them.
func up(t testing.TB, tag string, spec testenv.Spec) *testenv.Env {
	t.Helper()
	testgate.Root(t)
	testgate.Short(t)
	spec.Name = envName(tag)
	spec.Bin = binaries(t)
	spec.Progress = testWriter{t}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e, err := testenv.Up(ctx, spec)
	if err != nil {
		t.Fatalf("testenv up: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, e)
		}
		if err := e.Down(context.Background()); err != nil {
			t.Errorf("testenv down: %v", err)
		}
	})
	return e
}

func dumpLogs(t testing.TB, e *testenv.Env) {
	for _, n := range e.Nodes {
		b, err := os.ReadFile(n.Log)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		t.Logf("last lines of %s:\n%s", n.Log, strings.Join(lines, "\n"))
	}
}

// eventually polls cond until it returns nil or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition, not synchronising
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

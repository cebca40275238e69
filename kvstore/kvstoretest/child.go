package kvstoretest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/dial"
)

// childEnv carries a childSpec to a re-executed test binary.
const childEnv = "WEFT_KVSTORETEST_CHILD"

type childSpec struct {
	Config kvstore.Config
	Key    string
}

// Main is for TestMain of packages that run the suite: in a child process
// started by the suite it writes a leased key and waits to be killed;
// otherwise it runs the tests.
func Main(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}

func runChild(spec string) int {
	var cs childSpec
	if err := json.Unmarshal([]byte(spec), &cs); err != nil {
		fmt.Fprintln(os.Stderr, "child: bad spec:", err)
		return 2
	}
	ctx := context.Background()
	c, err := dial.Open(ctx, cs.Config, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	if _, err := c.Update(ctx, cs.Key, []byte("alive"), kvstore.Leased()); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	fmt.Println("ready")
	select {} // keep the lease alive until killed
}

type child struct{ cmd *exec.Cmd }

// startChild re-executes the test binary as a child that holds key under
// its own lease, and waits until it says so.
func startChild(t testing.TB, cfg kvstore.Config, key string) *child {
	t.Helper()
	spec, err := json.Marshal(childSpec{Config: cfg, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	c := &child{cmd: cmd}
	t.Cleanup(func() { c.kill(t) })
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("child said %q", line)
		}
		ready <- err
		io.Copy(io.Discard, out)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("child did not get ready (does TestMain call kvstoretest.Main?): %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("child not ready after 30s (does TestMain call kvstoretest.Main?)")
	}
	return c
}

// kill sends SIGKILL (no chance to revoke anything) and reaps the child.
func (c *child) kill(t testing.TB) {
	if c.cmd.ProcessState != nil {
		return
	}
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

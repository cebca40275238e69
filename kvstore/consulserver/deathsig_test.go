package consulserver_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore/consulserver"
)

// childEnv makes the test binary a parent process that starts one agent,
// prints its endpoint and waits to be killed; dirEnv is the agent's DataDir.
const (
	childEnv = "WEFT_CONSULSERVER_CHILD"
	dirEnv   = "WEFT_CONSULSERVER_CHILD_DIR"
)

func TestMain(m *testing.M) {
	if bin := os.Getenv(childEnv); bin != "" {
		os.Exit(runChild(bin, os.Getenv(dirEnv)))
	}
	os.Exit(m.Run())
}

func runChild(bin, dir string) int {
	s, err := consulserver.Start(context.Background(), consulserver.Options{DataDir: dir, Binary: bin})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(s.Endpoint())
	select {}
}

// TestAgentDiesWithParent: a process that started an agent is killed with
// SIGKILL (no cleanup runs); the agent goes with it.
func TestAgentDiesWithParent(t *testing.T) {
	bin := binary(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+bin, dirEnv+"="+t.TempDir())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child did not report an endpoint: %v", err)
	}
	endpoint := strings.TrimSpace(line)
	if l, err := leader(endpoint); err != nil || l == "" {
		t.Fatalf("child's agent %s: leader %q, err %v", endpoint, l, err)
	}

	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := leader(endpoint); err != nil {
			return // gone
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %s still answers 30s after its parent was killed", endpoint)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

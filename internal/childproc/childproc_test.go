package childproc

import (
	"bufio"
	"io"
	"syscall"
	"testing"
	"time"
)

// TestStop: a child that exits on SIGTERM is not killed; one that ignores
// it is killed after the grace period; stopping twice is harmless.
func TestStop(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		killed bool
	}{
		{"exits on TERM", "echo ready; exec sleep 60", false},
		{"ignores TERM", "trap '' TERM; echo ready; sleep 60 & wait", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, log := io.Pipe()
			p, err := Start("/bin/sh", []string{"-c", tc.script}, t.TempDir(), log)
			if err != nil {
				t.Fatal(err)
			}
			if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
				t.Fatalf("child said %q, %v", line, err)
			}
			go io.Copy(io.Discard, out)
			if got := p.Stop(syscall.SIGTERM, 300*time.Millisecond); got != tc.killed {
				t.Fatalf("killed = %v, want %v", got, tc.killed)
			}
			select {
			case <-p.Exited():
			default:
				t.Fatal("Stop returned before the process exited")
			}
			if p.Stop(syscall.SIGTERM, time.Second) {
				t.Fatal("stopping an exited process killed something")
			}
		})
	}
	var nilProc *Process
	if nilProc.Stop(syscall.SIGKILL, 0) {
		t.Fatal("a nil process was killed")
	}
}

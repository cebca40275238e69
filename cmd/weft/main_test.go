package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain runs main instead of the tests when the test binary is started
// by runWeft: that is the weft binary, with its real exit code and output.
func TestMain(m *testing.M) {
	if os.Getenv("WEFT_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runWeft(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "WEFT_RUN_MAIN=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run weft: %v", err)
	}
	return out.String(), errOut.String(), code
}

// TestExitCodes checks what a user of the binary sees: output, exit code
// and one "Error: " line on failure.
func TestExitCodes(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "agent.sock")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{
			name: "version without an agent", args: []string{"--socket", missing, "version", "-o", "json"},
			wantStdout: `"client": "dev"`,
		},
		{
			name: "status without an agent", args: []string{"--socket", missing, "status"}, wantCode: 1,
			wantStderr: "Error: reach weft-agent at " + missing + ": is the agent running? (stat " + missing + ": no such file or directory)\n",
		},
		{
			name: "bad output format", args: []string{"-o", "xml", "node", "list"}, wantCode: 1,
			wantStderr: "Error: parse --output \"xml\": want one of table, json, yaml\n",
		},
		{
			name: "help", args: []string{"--help"},
			wantStdout: "Usage:\n  weft [command]",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runWeft(t, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.wantCode, stderr)
			}
			if !strings.Contains(stdout, tc.wantStdout) {
				t.Errorf("stdout %q, want it to contain %q", stdout, tc.wantStdout)
			}
			if tc.wantStderr != "" && stderr != tc.wantStderr {
				t.Errorf("stderr %q, want %q", stderr, tc.wantStderr)
			}
			if tc.wantCode == 0 && stderr != "" {
				t.Errorf("stderr %q, want nothing", stderr)
			}
		})
	}
}

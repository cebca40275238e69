package cli

import (
	"strings"
	"testing"
)

// TestOutputRefused: a command that prints only text refuses -o json|yaml
// before it does anything, and says which commands print them.
func TestOutputRefused(t *testing.T) {
	dir := shortTempDir(t)
	for _, args := range [][]string{
		{"testenv", "down", "--name", "nosuch", "-o", "json"},
		{"clustermesh", "connect", "c1", "c2", "-o", "yaml"},
		{"completion", "bash", "-o", "json"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runCLI(t, dir, nil, args...)
			if r.err == nil || !strings.Contains(r.err.Error(), "prints no") || !strings.Contains(r.err.Error(), "node list") {
				t.Fatalf("error %v, want a refusal naming the commands that print structured output", r.err)
			}
			if r.stdout != "" {
				t.Fatalf("the refused command printed %q", r.stdout)
			}
		})
	}
	if r := runCLI(t, dir, nil, "version", "-o", "json"); r.err != nil || !strings.HasPrefix(r.stdout, "{") {
		t.Fatalf("version -o json: %v %q", r.err, r.stdout)
	}
}

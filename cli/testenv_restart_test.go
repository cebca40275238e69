package cli

import (
	"strings"
	"testing"
)

// TestTestenvRestartAgentArgs: bad input to `weft testenv restart-agent`
// fails with what is accepted, before any environment is touched.
func TestTestenvRestartAgentArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no node", []string{"testenv", "restart-agent"}, "accepts 1 arg"},
		{"two nodes", []string{"testenv", "restart-agent", "c1-n1", "c1-n2"}, "accepts 1 arg"},
		{"bad signal", []string{"testenv", "restart-agent", "c1-n1", "--signal", "HUP"}, `--signal "HUP": accepted are KILL and TERM`},
		{"unknown environment", []string{"--name", "no-such-env-4711", "testenv", "restart-agent", "c1-n1"}, "no-such-env-4711"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, t.TempDir(), nil, tc.args...)
			if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
				t.Fatalf("weft %s: %v, want an error containing %q", strings.Join(tc.args, " "), r.err, tc.want)
			}
		})
	}
}

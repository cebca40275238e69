package cli

import (
	"strings"
	"testing"
)

// TestUnknownSubcommands: a mistyped subcommand is an error naming it and
// what would be accepted; a bare group command prints its help.
func TestUnknownSubcommands(t *testing.T) {
	dir := shortTempDir(t)
	for _, tc := range []struct {
		args []string
		want string // in the error; "" means success
	}{
		{[]string{"node", "lst"}, `unknown command "lst" for "weft node": did you mean list?`},
		{[]string{"bpf", "foo", "list"}, `unknown command "foo" for "weft bpf": accepted are ct, endpoints, ipcache, lb, metrics, policy, tunnel`},
		{[]string{"clustermesh", "conect"}, `did you mean connect?`},
		{[]string{"service", "creat"}, `unknown command "creat" for "weft service"`},
		{[]string{"nosuch"}, `unknown command "nosuch" for "weft"`},
		{[]string{"node"}, ""},
		{[]string{"bpf"}, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runCLI(t, dir, nil, tc.args...)
			switch {
			case tc.want == "" && r.err != nil:
				t.Fatalf("error %v", r.err)
			case tc.want == "" && !strings.Contains(r.stdout+r.stderr, "Available Commands:"):
				t.Fatalf("no help printed: %q", r.stdout+r.stderr)
			case tc.want != "" && (r.err == nil || !strings.Contains(r.err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", r.err, tc.want)
			}
		})
	}
}

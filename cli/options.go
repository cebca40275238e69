package cli

import (
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/weftnet/weft/api/agentapi"
)

// Output formats accepted by -o/--output.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

func outputFormats() []string { return []string{formatTable, formatJSON, formatYAML} }

const (
	// defaultTestenvRoot holds one directory per testenv environment
	// (docs/agent.md, "testenv layout").
	defaultTestenvRoot = "/var/run/weft/testenv"
	// defaultEnvironment is the environment --node refers to without --name.
	defaultEnvironment = "weft"
	defaultTimeout     = 10 * time.Second
)

// options are the persistent flags every command shares, plus the few
// things tests replace (where testenv lives, the clock, the environment).
type options struct {
	socket  string
	name    string
	node    string
	output  string
	timeout time.Duration

	// socketFlag, nameFlag and nodeFlag are true for flags given on the
	// command line (not from WEFT_* variables).
	socketFlag, nameFlag, nodeFlag bool

	testenvRoot string
	chart       fs.FS // the Helm chart `weft install` renders (WithChart)
	now         func() time.Time
	getenv      func(string) string
}

func defaultOptions() *options {
	return &options{
		testenvRoot: defaultTestenvRoot,
		now:         time.Now,
		getenv:      os.Getenv,
	}
}

func (o *options) registerFlags(root *cobra.Command) {
	fs := root.PersistentFlags()
	fs.StringVar(&o.socket, "socket", agentapi.DefaultSocket,
		"unix socket of the weft-agent to ask (env WEFT_SOCKET)")
	fs.StringVar(&o.name, "name", "",
		"testenv environment to act on: its agents are reached at "+o.testenvRoot+"/<name>/<node>/agent.sock (env WEFT_NAME)")
	fs.StringVar(&o.node, "node", "",
		"node of the testenv environment (default: its first node; without --name the environment is \""+defaultEnvironment+"\") (env WEFT_NODE)")
	fs.StringVarP(&o.output, "output", "o", formatTable,
		"output format: "+strings.Join(outputFormats(), ", ")+" (env WEFT_OUTPUT)")
	fs.DurationVar(&o.timeout, "timeout", defaultTimeout,
		"how long to wait for the agent's answer (env WEFT_TIMEOUT)")

	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputFormats(), cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("name", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return listEnvironments(o.testenvRoot), cobra.ShellCompDirectiveNoFileComp
	})
	_ = root.RegisterFlagCompletionFunc("node", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		name := o.name
		if name == "" {
			name = defaultEnvironment
		}
		return environmentNodes(envDir(o.testenvRoot, name)), cobra.ShellCompDirectiveNoFileComp
	})
}

// complete applies WEFT_* variables to the flags not given on the command
// line (flags win over the environment) and checks the values.
func (o *options) complete(fs *pflag.FlagSet) error {
	changed := func(name string) bool { f := fs.Lookup(name); return f != nil && f.Changed }
	o.socketFlag, o.nameFlag, o.nodeFlag = changed("socket"), changed("name"), changed("node")
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "help" {
			return
		}
		env := "WEFT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v := o.getenv(env)
		if v == "" {
			return
		}
		if serr := f.Value.Set(v); serr != nil {
			err = fmt.Errorf("read %s=%q: %w", env, v, serr)
		}
	})
	if err != nil {
		return err
	}
	if !slices.Contains(outputFormats(), o.output) {
		return fmt.Errorf("parse --output %q: want one of %s", o.output, strings.Join(outputFormats(), ", "))
	}
	if o.timeout <= 0 {
		return fmt.Errorf("parse --timeout %s: want a positive duration such as 5s or 1m", o.timeout)
	}
	return nil
}

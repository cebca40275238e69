package connectivity

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/testenv"
)

// Scenario is one named check.
type Scenario struct {
	Name string // e.g. pod-to-pod/cross-node/tcp/c1-n1->c1-n2
	// Run returns nil on success, else an error explaining what was sent,
	// from where, to where and what happened.
	Run func(ctx context.Context) error
}

// Result is the outcome of one scenario, or of a test that was skipped.
type Result struct {
	Name     string
	Run      int // 1..Options.Repeat
	Err      error
	Duration time.Duration
	// Skipped is why a test of the catalogue did not run (Err is nil).
	Skipped string
}

// Report is the outcome of a run.
type Report struct {
	Results []Result
}

// Failed returns the failed results.
func (r Report) Failed() []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Err != nil {
			out = append(out, res)
		}
	}
	return out
}

// Options tune a run.
type Options struct {
	// Select keeps only the scenarios it matches; the zero Selection runs all.
	Select Selection
	// Repeat runs the selected scenarios this many times (flake hunting;
	// default 1).
	Repeat int
	// Timeout bounds one probe (default 3s).
	Timeout time.Duration
	// PropagationTimeout bounds waiting for every agent to know every test
	// pod before the scenarios start (default 60s).
	PropagationTimeout time.Duration
	// DeletePods removes the test pods afterwards (default: kept, reused
	// by the next run).
	DeletePods bool
	// FlowValidation checks that the policy tests' traffic left the flows
	// it should in the nodes' flow records: FlowValidationDisabled (or
	// empty), FlowValidationWarning or FlowValidationStrict.
	FlowValidation string
	// Progress receives one line per scenario and the summary; nil discards.
	Progress io.Writer
	Log      *slog.Logger
}

func (o *Options) defaults() {
	if o.Repeat <= 0 {
		o.Repeat = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
	if o.PropagationTimeout <= 0 {
		o.PropagationTimeout = 60 * time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// group is scenarios that run together, with what must be in force
// around them (a policy test's policies).
type group struct {
	scenarios []Scenario
	setup     func(ctx context.Context) error // nil: nothing to set up
	teardown  func(ctx context.Context) error
}

// Run prepares pods and servers in env, runs every selected test of the
// catalogue and prints the summary. The error is about preparing, not
// about failed scenarios: those are in the report.
func Run(ctx context.Context, env *testenv.Env, opts Options) (Report, error) {
	opts.defaults()
	fx := &fixture{env: env, opts: opts}
	fx.drv = testenvDriver{fx}
	return run(ctx, fx)
}

// RunHosts is Run against standalone hosts, through the Connectivity API
// of each node's agent: the test pods are created by the agents with the
// nodes' CNI configuration, and every probe from a pod or a node is made
// by that node's agent. The layout (clusters, node addresses) comes from
// the agents. Tests that need testenv (the outside server, the agent log
// files) are reported as skipped with the reason.
func RunHosts(ctx context.Context, hosts Hosts, opts Options) (Report, error) {
	opts.defaults()
	d, err := connectHosts(ctx, hosts)
	if err != nil {
		return Report{}, err
	}
	defer d.close()
	d.progress = opts.Progress
	if left := d.untested(ctx); len(left) > 0 {
		fmt.Fprintf(opts.Progress, "• not tested (no --agent given for them): %s\n", strings.Join(left, ", "))
	}
	fx := &fixture{drv: d, opts: opts}
	fx.skipped = append(fx.skipped, Result{Name: "check-log-errors", Skipped: "the agents' logs are on the hosts (journalctl -u weft-agent there)"})
	return run(ctx, fx)
}

func run(ctx context.Context, fx *fixture) (Report, error) {
	opts := fx.opts
	fx, err := setup(ctx, fx)
	if err != nil {
		return Report{}, err
	}
	defer fx.close(ctx)
	checks, err := fx.startChecks(ctx)
	if err != nil {
		return Report{}, err
	}
	var (
		groups  []group
		skipped []Result
		total   int
	)
	for _, g := range append(fx.groups(&skipped), group{scenarios: checks}) {
		var sel []Scenario
		for _, s := range g.scenarios {
			if opts.Select.Match(s.Name) {
				sel = append(sel, s)
			}
		}
		if len(sel) > 0 {
			g.scenarios = sel
			groups = append(groups, g)
			total += len(sel)
		}
	}
	var rep Report
	for _, s := range skipped {
		if opts.Select.Match(s.Name) {
			rep.Results = append(rep.Results, s)
		}
	}
	if total == 0 {
		return Report{}, fmt.Errorf("run connectivity test: no scenario matches --test %s", opts.Select)
	}
	w := opts.Progress
	total *= opts.Repeat
	done := 0
	for run := 1; run <= opts.Repeat && ctx.Err() == nil; run++ {
		for _, g := range groups {
			var setupErr error
			if g.setup != nil {
				setupErr = g.setup(ctx)
			}
			for _, s := range g.scenarios {
				start := time.Now()
				err := setupErr
				if err == nil {
					err = s.Run(ctx)
				}
				res := Result{Name: s.Name, Run: run, Err: err, Duration: time.Since(start)}
				rep.Results = append(rep.Results, res)
				done++
				mark := "✅"
				if err != nil {
					mark = "❌"
				}
				fmt.Fprintf(w, "[%2d/%d] %s %s (%v)\n", done, total, mark, s.Name, res.Duration.Round(time.Millisecond))
				if ctx.Err() != nil {
					break
				}
			}
			if g.teardown != nil {
				if err := g.teardown(context.WithoutCancel(ctx)); err != nil {
					fmt.Fprintf(w, "  ! %v\n", err)
				}
			}
		}
	}
	rep.PrintSummary(w)
	return rep, nil
}

// groups are the catalogue's tests as they run here: the scenarios
// without policy first, then one group per policy test (its policies in
// force around it). Tests that cannot run are appended to skipped.
func (fx *fixture) groups(skipped *[]Result) []group {
	out := []group{{scenarios: fx.scenarios()}}
	for _, t := range policyTests() {
		switch {
		case !fx.policy:
			*skipped = append(*skipped, Result{Name: t.name, Skipped: "the agents do not serve the Policy API"})
			continue
		case t.multiCluster && len(fx.clusters) < 2:
			*skipped = append(*skipped, Result{Name: t.name, Skipped: "needs an environment of several clusters"})
			continue
		case t.outside && fx.outside == nil:
			*skipped = append(*skipped, Result{Name: t.name, Skipped: noOutside})
			continue
		}
		g := group{}
		for _, cl := range fx.clusters {
			prefix := t.name + "/"
			if len(fx.clusters) > 1 {
				prefix = cl.name + "/" + prefix
			}
			t.scenarios(fx, cl, func(name string, run func(context.Context) error) {
				g.scenarios = append(g.scenarios, Scenario{Name: prefix + name, Run: run})
			})
		}
		var before map[string]map[string]*agentapi.EndpointPolicy
		g.setup = func(ctx context.Context) (err error) {
			fmt.Fprintf(fx.opts.Progress, "• %s: applying its policies\n", t.name)
			before, err = fx.applyPolicyTest(ctx, t)
			return err
		}
		g.teardown = func(ctx context.Context) error { return fx.removePolicyTest(ctx, t, before) }
		out = append(out, g)
	}
	for _, s := range skippedTests {
		*skipped = append(*skipped, Result{Name: s.name, Skipped: s.reason})
	}
	*skipped = append(*skipped, fx.skipped...)
	return out
}

// Skipped returns the tests that did not run, with the reason.
func (r Report) Skipped() []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Skipped != "" {
			out = append(out, res)
		}
	}
	return out
}

// PrintSummary writes `✅ N/N tests successful (k tests skipped)` or
// `❌ k/N tests failed` followed by each failure's explanation; skipped
// tests are counted, not run, and never silently absent.
func (r Report) PrintSummary(w io.Writer) {
	failed, skipped := r.Failed(), len(r.Skipped())
	ran := len(r.Results) - skipped
	fmt.Fprintln(w)
	note := ""
	if skipped > 0 {
		note = fmt.Sprintf(" (%d tests skipped: weft connectivity test --list says why)", skipped)
	}
	if len(failed) == 0 {
		fmt.Fprintf(w, "✅ %d/%d tests successful%s\n", ran, ran, note)
		return
	}
	fmt.Fprintf(w, "❌ %d/%d tests failed%s\n", len(failed), ran, note)
	for _, f := range failed {
		name := f.Name
		if f.Run > 1 {
			name = fmt.Sprintf("%s (run %d)", f.Name, f.Run)
		}
		fmt.Fprintf(w, "  ❌ %s:\n     %s\n", name, strings.ReplaceAll(f.Err.Error(), "\n", "\n     "))
	}
}

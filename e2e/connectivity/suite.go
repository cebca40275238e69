package connectivity

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/weftnet/weft/testenv"
)

// Scenario is one named check.
type Scenario struct {
	Name string // e.g. pod-to-pod/cross-node/tcp/c1-n1->c1-n2
	// Run returns nil on success, else an error explaining what was sent,
	// from where, to where and what happened.
	Run func(ctx context.Context) error
}

// Result is the outcome of one scenario.
type Result struct {
	Name     string
	Run      int // 1..Options.Repeat
	Err      error
	Duration time.Duration
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

// Run prepares pods and servers in env, runs every scenario and prints the
// summary. The error is about preparing, not about failed scenarios: those
// are in the report.
func Run(ctx context.Context, env *testenv.Env, opts Options) (Report, error) {
	opts.defaults()
	fx, err := setup(ctx, env, opts)
	if err != nil {
		return Report{}, err
	}
	defer fx.close(ctx)
	var scenarios []Scenario
	for _, s := range fx.scenarios() {
		if opts.Select.Match(s.Name) {
			scenarios = append(scenarios, s)
		}
	}
	if len(scenarios) == 0 {
		return Report{}, fmt.Errorf("run connectivity test: no scenario matches --test %s", opts.Select)
	}
	var rep Report
	w := opts.Progress
	total := len(scenarios) * opts.Repeat
	for run := 1; run <= opts.Repeat && ctx.Err() == nil; run++ {
		for _, s := range scenarios {
			start := time.Now()
			err := s.Run(ctx)
			res := Result{Name: s.Name, Run: run, Err: err, Duration: time.Since(start)}
			rep.Results = append(rep.Results, res)
			mark := "✅"
			if err != nil {
				mark = "❌"
			}
			fmt.Fprintf(w, "[%2d/%d] %s %s (%v)\n", len(rep.Results), total, mark, s.Name, res.Duration.Round(time.Millisecond))
			if ctx.Err() != nil {
				break
			}
		}
	}
	rep.PrintSummary(w)
	return rep, nil
}

// PrintSummary writes `✅ N/N tests successful` or `❌ k/N tests failed`
// followed by each failure's explanation.
func (r Report) PrintSummary(w io.Writer) {
	failed := r.Failed()
	fmt.Fprintln(w)
	if len(failed) == 0 {
		fmt.Fprintf(w, "✅ %d/%d tests successful\n", len(r.Results), len(r.Results))
		return
	}
	fmt.Fprintf(w, "❌ %d/%d tests failed\n", len(failed), len(r.Results))
	for _, f := range failed {
		name := f.Name
		if f.Run > 1 {
			name = fmt.Sprintf("%s (run %d)", f.Name, f.Run)
		}
		fmt.Fprintf(w, "  ❌ %s:\n     %s\n", name, strings.ReplaceAll(f.Err.Error(), "\n", "\n     "))
	}
}

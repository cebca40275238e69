package preflight

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
)

// Result is one check's outcome. Fix is set when OK is false.
type Result struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Report is every check's result, in the order they ran.
type Report struct {
	OK     bool     `json:"ok"`
	Checks []Result `json:"checks"`
}

// Failed are the results that did not pass.
func (r Report) Failed() []Result {
	var out []Result
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// Refusal is weft-agent's start-up error: one line per failed check with
// what to do. It is nil when every check passed.
func (r Report) Refusal() error {
	failed := r.Failed()
	if len(failed) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "this host cannot run weft-agent (%d check(s) failed; `weft preflight` shows every check):", len(failed))
	for _, f := range failed {
		fmt.Fprintf(&b, "\n  - %s: %s; fix: %s", f.Name, f.Detail, f.Fix)
	}
	return fmt.Errorf("%s", b.String())
}

// check is one named check. It returns what it found, and the fix when
// ok is false.
type check struct {
	name string
	run  func(ctx context.Context, c *Config, h *host) (ok bool, detail, fix string)
}

// host is what the checks find out and share.
type host struct {
	log      *slog.Logger
	underlay string // device name, "" when not found
	// prepErr: what weft-agent failed to set up at start, by check name.
	prepErr map[string]error
}

func newHost(log *slog.Logger) *host {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &host{log: log, prepErr: map[string]error{}}
}

func checks() []check {
	return []check{
		{"privileges", checkPrivileges},
		{"kernel", checkKernel},
		{"bpf", checkBPF},
		{"tc-attach", checkTC},
		{"bpffs", checkBPFFS},
		{"cgroup2", checkCgroup2},
		{"vxlan", checkVXLAN},
		{"underlay", checkUnderlay},
		{"rp-filter", checkRPFilter},
		{"kvstore", checkStore},
	}
}

// Run runs every check in order on the calling goroutine (the file
// system checks see its thread's mount namespace) and changes nothing on
// the host. log receives the store client's messages.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	return run(ctx, cfg, newHost(log)), nil
}

func run(ctx context.Context, cfg Config, h *host) Report {
	rep := Report{OK: true}
	for _, ck := range checks() {
		if ck.name == "kvstore" && cfg.SkipStore {
			continue
		}
		ok, detail, fix := ck.run(ctx, &cfg, h)
		if ok {
			fix = ""
		}
		rep.Checks = append(rep.Checks, Result{Name: ck.name, OK: ok, Detail: detail, Fix: fix})
		rep.OK = rep.OK && ok
	}
	return rep
}

// WriteTable prints one row per check (CHECK, RESULT, DETAIL), with the
// fix under each failed one, and a last line saying whether the host is
// ready.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tRESULT\tDETAIL")
	for _, c := range r.Checks {
		res := "OK"
		if !c.OK {
			res = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, res, c.Detail)
		if !c.OK {
			fmt.Fprintf(tw, "\t\tfix: %s\n", c.Fix)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.OK {
		_, err := fmt.Fprintln(w, "\nthis host can run weft-agent")
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d check(s) failed: this host cannot run weft-agent as it is\n", len(r.Failed()))
	return err
}

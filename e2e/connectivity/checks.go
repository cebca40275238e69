package connectivity

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weftnet/weft/api/agentapi"
)

// expectedDrops are the drop reasons the tests cause on purpose (the
// policy tests' denied probes); any other drop during a run is a finding.
var expectedDrops = map[string]bool{"forwarded": true, "policy denied": true}

// startChecks takes what the run's closing checks compare against — every
// node's datapath drop counters and the length of its agent log — and
// returns those checks as scenarios:
// no-unexpected-packet-drops/<node> and check-log-errors/<node>.
func (fx *fixture) startChecks(ctx context.Context) ([]Scenario, error) {
	var out []Scenario
	for _, n := range fx.drv.nodes() {
		drops, err := fx.dropCounters(ctx, n.name)
		if err != nil {
			return nil, fmt.Errorf("read the datapath counters of %s: %w", n.name, err)
		}
		var logStart int64
		if fi, err := os.Stat(n.log); err == nil {
			logStart = fi.Size()
		}
		node, logFile := n.name, n.log
		out = append(out,
			Scenario{Name: "no-unexpected-packet-drops/" + node, Run: func(ctx context.Context) error {
				now, err := fx.dropCounters(ctx, node)
				if err != nil {
					return err
				}
				var rose []string
				for reason, n := range now {
					if !expectedDrops[reason] && n > drops[reason] {
						rose = append(rose, fmt.Sprintf("%s: %d packets", reason, n-drops[reason]))
					}
				}
				if len(rose) > 0 {
					return fmt.Errorf("the datapath of node %s dropped packets during the run for reasons no test causes: %s (weft --node %s bpf metrics list)",
						node, strings.Join(rose, ", "), node)
				}
				return nil
			}},
		)
		if logFile == "" {
			continue
		}
		out = append(out,
			Scenario{Name: "check-log-errors/" + node, Run: func(context.Context) error {
				lines, err := logErrors(logFile, logStart)
				if err != nil {
					return err
				}
				if len(lines) > 0 {
					return fmt.Errorf("the agent of node %s logged %d errors during the run (%s):\n%s", node, len(lines), logFile, strings.Join(lines, "\n"))
				}
				return nil
			}},
		)
	}
	return out, nil
}

// dropCounters reads a node's datapath packet counters by reason.
func (fx *fixture) dropCounters(ctx context.Context, node string) (map[string]uint64, error) {
	a, closeFn, err := fx.agent(ctx, node)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	t, err := a.DumpBPF(rctx, &agentapi.DumpBPFRequest{Map: "metrics"})
	if err != nil {
		return nil, err
	}
	col := slices.Index(t.Columns, "PACKETS")
	if col < 1 {
		return nil, fmt.Errorf("node %s: the agent's metrics table has no PACKETS column (columns %v)", node, t.Columns)
	}
	out := map[string]uint64{} // by reason, both directions
	for _, r := range t.Rows {
		if len(r.Cells) <= col {
			continue
		}
		n, err := strconv.ParseUint(r.Cells[col], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("node %s: packets %q of %s: %w", node, r.Cells[col], r.Cells[0], err)
		}
		out[r.Cells[0]] += n
	}
	return out, nil
}

// logErrors returns the error-level lines of a log written after offset
// (at most 20, with a count of the rest).
func logErrors(path string, offset int64) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the agent log: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, err
	}
	var out []string
	more := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "level=ERROR") {
			continue
		}
		if len(out) < 20 {
			out = append(out, "  "+line)
		} else {
			more++
		}
	}
	if more > 0 {
		out = append(out, fmt.Sprintf("  … and %d more", more))
	}
	return out, sc.Err()
}

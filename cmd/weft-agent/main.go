// Command weft-agent is Weft's per-node agent. See docs/agent.md.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/weftnet/weft/agent"
	"github.com/weftnet/weft/internal/daemon"
	"github.com/weftnet/weft/preflight"
)

var version = "dev"

const usage = `weft-agent runs Weft on one node: endpoints for weft-cni, the node's datapath,
and the cluster's shared state from the store.

Example:
  weft-agent --node-name n1 --kvstore etcd --kvstore-endpoints http://10.0.0.1:2379

Every flag can also be given as WEFT_<FLAG> (e.g. WEFT_NODE_NAME) or in --config FILE.
`

// exitHostRefused is the exit code of a host that cannot run the agent;
// the systemd unit does not restart on it (RestartPreventExitStatus).
const exitHostRefused = 3

func main() {
	cfg := agent.DefaultConfig()
	var (
		flags     *pflag.FlagSet
		checkOnly bool
	)
	daemon.Main(daemon.Program{Name: "weft-agent", Version: version, Usage: usage,
		Flags: func(fs *pflag.FlagSet) {
			flags = fs
			cfg.RegisterFlags(fs)
			fs.BoolVar(&checkOnly, "preflight", false, "check whether this host can run the agent as configured, print OK/FAIL per check and exit (1 if any failed)")
		},
		Run: func(ctx context.Context, log *slog.Logger) error {
			cfg.Version = version
			if err := host(ctx, &cfg, checkOnly, !flags.Changed("cgroup-path"), log); err != nil {
				return err
			}
			return run(ctx, cfg, log)
		}})
}

// host runs the preflight checks (docs/deploy-hosts.md): with checkOnly it
// prints them and ends the program; else it mounts bpffs and cgroup v2 where
// missing and refuses a host it cannot run on, one line per reason.
func host(ctx context.Context, cfg *agent.Config, checkOnly, findCgroup bool, log *slog.Logger) error {
	pf := preflight.Config{RoutingMode: cfg.RoutingMode, NodeIP: cfg.NodeIP, UnderlayDevice: cfg.UnderlayDevice,
		BPFFS: cfg.BPFFS, CgroupPath: cfg.CgroupPath, KVStore: cfg.KVStore}
	if findCgroup {
		pf.CgroupPath = ""
	}
	if checkOnly {
		rep, err := preflight.Run(ctx, pf, log)
		if err != nil {
			return err
		}
		if err := rep.WriteTable(os.Stdout); err != nil || !rep.OK {
			return &daemon.ExitError{Code: 1}
		}
		return &daemon.ExitError{Code: 0}
	}
	var err error
	if cfg.CgroupPath, err = preflight.Start(ctx, pf, log); err != nil {
		return &daemon.ExitError{Code: exitHostRefused, Err: err}
	}
	return nil
}

func run(ctx context.Context, cfg agent.Config, log *slog.Logger) error {
	a, err := agent.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

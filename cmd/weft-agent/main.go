// Command weft-agent is Weft's per-node agent. See docs/agent.md.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/weftnet/weft/agent"
	"github.com/weftnet/weft/internal/daemonconfig"
	"github.com/weftnet/weft/preflight"
)

var version = "dev"

func main() {
	cfg := agent.DefaultConfig()
	fs := pflag.NewFlagSet("weft-agent", pflag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "weft-agent runs Weft on one node: endpoints for weft-cni, the node's datapath,\n"+
			"and the cluster's shared state from the store.\n\n"+
			"Example:\n  weft-agent --node-name n1 --kvstore etcd --kvstore-endpoints http://10.0.0.1:2379\n\n"+
			"Every flag can also be given as WEFT_<FLAG> (e.g. WEFT_NODE_NAME) or in --config FILE.\n\nFlags:\n%s", fs.FlagUsages())
	}
	cfg.RegisterFlags(fs)
	checkOnly := fs.Bool("preflight", false, "check whether this host can run the agent as configured, print OK/FAIL per check and exit (1 if any failed)")
	common := daemonconfig.Register(fs)
	if err := common.Load(fs, os.Args[1:], os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "weft-agent:", err)
		os.Exit(2)
	}
	if common.ShowVersion {
		fmt.Println("weft-agent", version)
		return
	}
	log, err := common.Logger()
	if err != nil {
		fmt.Fprintln(os.Stderr, "weft-agent:", err)
		os.Exit(2)
	}
	agent.Version = version
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := host(ctx, &cfg, *checkOnly, !fs.Changed("cgroup-path"), log); err != nil {
		fmt.Fprintln(os.Stderr, "weft-agent:", err) // one line per failed check
		os.Exit(3)                                  // the unit does not restart on 3
	}
	if err := run(ctx, cfg, log); err != nil {
		log.Error("weft-agent failed", "err", err)
		os.Exit(1)
	}
}

// host runs the preflight checks (docs/deploy-hosts.md): with checkOnly it
// prints them and exits; else it mounts bpffs and cgroup v2 where missing
// and refuses a host it cannot run on, naming every reason.
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
			os.Exit(1)
		}
		os.Exit(0)
	}
	var err error
	cfg.CgroupPath, err = preflight.Start(ctx, pf, log)
	return err
}

func run(ctx context.Context, cfg agent.Config, log *slog.Logger) error {
	a, err := agent.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

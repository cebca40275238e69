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
	if err := run(ctx, cfg, log); err != nil {
		log.Error("weft-agent failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg agent.Config, log *slog.Logger) error {
	a, err := agent.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

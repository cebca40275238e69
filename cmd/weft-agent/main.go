// Command weft-agent is Weft's per-node agent. See docs/agent.md.
package main

import (
	"context"
	"log/slog"

	"github.com/weftnet/weft/agent"
	"github.com/weftnet/weft/internal/daemon"
)

var version = "dev"

const usage = `weft-agent runs Weft on one node: endpoints for weft-cni, the node's datapath,
and the cluster's shared state from the store.

Example:
  weft-agent --node-name n1 --kvstore etcd --kvstore-endpoints http://10.0.0.1:2379

Every flag can also be given as WEFT_<FLAG> (e.g. WEFT_NODE_NAME) or in --config FILE.
`

func main() {
	cfg := agent.DefaultConfig()
	daemon.Main(daemon.Program{Name: "weft-agent", Version: version, Usage: usage, Flags: cfg.RegisterFlags,
		Run: func(ctx context.Context, log *slog.Logger) error {
			cfg.Version = version
			return run(ctx, cfg, log)
		}})
}

func run(ctx context.Context, cfg agent.Config, log *slog.Logger) error {
	a, err := agent.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

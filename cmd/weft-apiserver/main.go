// Command weft-apiserver publishes a Weft cluster to other clusters. See
// docs/clustermesh.md.
package main

import (
	"context"
	"log/slog"

	"github.com/weftnet/weft/clustermesh/apiserver"
	"github.com/weftnet/weft/internal/daemon"
)

var version = "dev"

const usage = "weft-apiserver serves a cluster's state to other clusters over mutual TLS,\n" +
	"signs their client certificates and collects the cluster's garbage.\n\n" +
	"Example (the configuration `weft clustermesh enable` wrote):\n" +
	"  weft-apiserver --config /var/lib/weft/clustermesh/c1/apiserver.json\n\n" +
	"Every flag can also be given as WEFT_<FLAG> or in --config FILE (JSON, flag names as keys).\n"

func main() {
	cfg := apiserver.DefaultConfig()
	daemon.Main(daemon.Program{Name: "weft-apiserver", Version: version, Usage: usage, Flags: cfg.RegisterFlags,
		Run: func(ctx context.Context, log *slog.Logger) error { return run(ctx, cfg, log) }})
}

func run(ctx context.Context, cfg apiserver.Config, log *slog.Logger) error {
	s, err := apiserver.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

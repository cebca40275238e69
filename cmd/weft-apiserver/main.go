// Command weft-apiserver publishes a Weft cluster to other clusters. See
// docs/clustermesh.md.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/weftnet/weft/clustermesh/apiserver"
	"github.com/weftnet/weft/internal/daemonconfig"
)

var version = "dev"

func main() {
	cfg := apiserver.DefaultConfig()
	fs := pflag.NewFlagSet("weft-apiserver", pflag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "weft-apiserver serves a cluster's state to other clusters over mutual TLS,\n"+
			"signs their client certificates and collects the cluster's garbage.\n\n"+
			"Example (the configuration `weft clustermesh enable` wrote):\n"+
			"  weft-apiserver --config /var/lib/weft/clustermesh/c1/apiserver.json\n\n"+
			"Every flag can also be given as WEFT_<FLAG> or in --config FILE (JSON, flag names as keys).\n\nFlags:\n%s", fs.FlagUsages())
	}
	cfg.RegisterFlags(fs)
	common := daemonconfig.Register(fs)
	if err := common.Load(fs, os.Args[1:], os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "weft-apiserver:", err)
		os.Exit(2)
	}
	if common.ShowVersion {
		fmt.Println("weft-apiserver", version)
		return
	}
	log, err := common.Logger()
	if err != nil {
		fmt.Fprintln(os.Stderr, "weft-apiserver:", err)
		os.Exit(2)
	}
	apiserver.Version = version
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("weft-apiserver failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg apiserver.Config, log *slog.Logger) error {
	s, err := apiserver.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

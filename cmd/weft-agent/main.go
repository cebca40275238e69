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
	configFile := fs.String("config", "", "YAML or JSON file with flag names as keys")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := parse(fs, configFile); err != nil {
		fmt.Fprintln(os.Stderr, "weft-agent:", err)
		os.Exit(2)
	}
	if *showVersion {
		fmt.Println("weft-agent", version)
		return
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "weft-agent: --log-level %q: accepted are debug, info, warn, error\n", *logLevel)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	agent.Version = version
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("weft-agent failed", "err", err)
		os.Exit(1)
	}
}

func parse(fs *pflag.FlagSet, configFile *string) error {
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if err := agent.LoadEnv(fs, os.Environ()); err != nil {
		return err
	}
	if *configFile != "" {
		return agent.LoadFile(fs, *configFile)
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

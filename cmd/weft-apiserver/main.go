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

	"github.com/weftnet/weft/apiserver"
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
	configFile := fs.String("config", "", "JSON file with flag names as keys")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := parse(fs, configFile); err != nil {
		fmt.Fprintln(os.Stderr, "weft-apiserver:", err)
		os.Exit(2)
	}
	if *showVersion {
		fmt.Println("weft-apiserver", version)
		return
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "weft-apiserver: --log-level %q: accepted are debug, info, warn, error\n", *logLevel)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	apiserver.Version = version
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("weft-apiserver failed", "err", err)
		os.Exit(1)
	}
}

func parse(fs *pflag.FlagSet, configFile *string) error {
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if err := apiserver.LoadEnv(fs, os.Environ()); err != nil {
		return err
	}
	if *configFile != "" {
		return apiserver.LoadFile(fs, *configFile)
	}
	return nil
}

func run(ctx context.Context, cfg apiserver.Config, log *slog.Logger) error {
	s, err := apiserver.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

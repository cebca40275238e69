// Command weft is the Weft CLI: it inspects a node's weft-agent (status,
// nodes, endpoints, identities, ipcache, services, BPF maps). The command
// tree lives in package cli.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/weftnet/weft/cli"
	"github.com/weftnet/weft/deploy"
)

// version is set at build time: go build -ldflags "-X main.version=v0.1.0".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.NewRootCommand(version, cli.WithChart(deploy.Chart())).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}

// Command tools builds (once) and prints the paths of cached external tools:
//
//	go run ./hack/tools consul cnitool
//
// The tools named are built concurrently: downloading one tool's modules
// overlaps compiling another's, which shortens a cold CI run.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/internal/toolcache"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./hack/tools <consul|etcd|cnitool|kube-apiserver|kubectl|helm|flanneld>...")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	names := os.Args[1:]
	tools := make([]toolcache.Tool, len(names))
	for i, name := range names {
		t, err := toolcache.Lookup(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "tools:", err)
			os.Exit(2)
		}
		tools[i] = t
	}
	paths := make([]string, len(tools))
	g, gctx := errgroup.WithContext(ctx)
	for i, t := range tools {
		g.Go(func() error {
			path, err := toolcache.Ensure(gctx, t, os.Stderr)
			paths[i] = path
			return err
		})
	}
	if err := g.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, "tools:", err)
		os.Exit(1)
	}
	for _, p := range paths {
		fmt.Println(p)
	}
}

// Command tools builds (once) and prints the path of a cached external tool:
//
//	go run ./hack/tools consul
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/weftnet/weft/internal/toolcache"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./hack/tools <consul|etcd|cnitool|kube-apiserver|kubectl>...")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	for _, name := range os.Args[1:] {
		t, err := toolcache.Lookup(name)
		if err == nil {
			var path string
			path, err = toolcache.Ensure(ctx, t, os.Stderr)
			if err == nil {
				fmt.Println(path)
				continue
			}
		}
		fmt.Fprintln(os.Stderr, "tools:", err)
		os.Exit(1)
	}
}

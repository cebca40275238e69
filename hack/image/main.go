// Command image builds Weft's OCI image archive (internal/image):
//
//	go run ./hack/image -o bin/weft-image.oci.tar -version v0.1.0
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/weftnet/weft/internal/image"
)

func main() {
	out := flag.String("o", "bin/weft-image.oci.tar", "OCI archive to write")
	version := flag.String("version", "dev", "version stamped into the binaries and the image")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	wd, _ := os.Getwd()
	d, err := image.Build(ctx, image.Options{Module: wd, Output: *out, Version: *version, Log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Println(d)
}

// Command weft-cni is Weft's CNI plugin. The container runtime runs it with
// CNI_COMMAND and the network configuration on stdin; see docs/cni.md.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"

	"github.com/weftnet/weft/cni"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	skel.PluginMainFuncs(cni.Funcs(), cni.VersionInfo(), cni.About(version))
}

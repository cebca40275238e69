package connectivity

import (
	"os"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/weftnet/weft/internal/namedns"
)

func netnsPath(name string) string { return namedns.Path(name) }

func netnsExists(name string) bool {
	_, err := os.Stat(netnsPath(name))
	return err == nil
}

func createNetNS(name string) error { return namedns.Create(name) }

func deleteNetNS(name string) error { return namedns.Delete(name) }

// inNetNS runs fn on a locked OS thread inside the named namespace;
// sockets fn opens stay there and processes it starts inherit it.
func inNetNS(name string, fn func() error) error {
	return ns.WithNetNSPath(netnsPath(name), func(ns.NetNS) error { return fn() })
}

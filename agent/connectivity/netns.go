package connectivity

import (
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/weftnet/weft/internal/namedns"
)

func netnsPath(name string) string { return namedns.Path(name) }

// netnsUsable reports whether the named namespace is there and is a
// network namespace (not the empty file a namespace mounted in another,
// ended mount namespace leaves).
func netnsUsable(name string) bool {
	h, err := ns.GetNS(netnsPath(name))
	if err != nil {
		return false
	}
	h.Close()
	return true
}

func createNetNS(name string) error { return namedns.Create(name) }

func deleteNetNS(name string) error { return namedns.Delete(name) }

// inNetNS runs fn on a locked OS thread inside the named namespace;
// sockets fn opens stay there and processes it starts inherit it.
func inNetNS(name string, fn func() error) error {
	return ns.WithNetNSPath(netnsPath(name), func(ns.NetNS) error { return fn() })
}

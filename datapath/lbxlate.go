package datapath

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// netnsCookie returns the cookie of the network namespace at path (the
// kernel's SO_NETNS_COOKIE of a socket created in it): the socket load
// balancer's programs see a pod as this number.
func netnsCookie(path string) (uint64, error) {
	r, err := openNS(path)
	if err != nil {
		return 0, err
	}
	defer r.close()
	var cookie uint64
	err = r.do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("socket in %s: %w", path, err)
		}
		defer unix.Close(fd)
		v, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
		if err != nil {
			return fmt.Errorf("SO_NETNS_COOKIE in %s: %w", path, err)
		}
		cookie = v
		return nil
	})
	return cookie, err
}

// notePodNetNS maps the pod's network namespace to its address in
// weft_netns_pods, so that flows the socket load balancer translated for
// it are reported with their frontend. A kernel without SO_NETNS_COOKIE
// only loses that detail.
func (d *Datapath) notePodNetNS(path string, ip netip.Addr) error {
	if path == "" || !ip.Is4() {
		return nil
	}
	cookie, err := netnsCookie(path)
	if errors.Is(err, syscall.ENOPROTOOPT) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := d.objs.WeftNetnsPods.Put(cookie, be32(ip)); err != nil {
		return fmt.Errorf("write netns of pod %s: %w", ip, err)
	}
	return nil
}

// forgetPodNetNS removes the namespaces mapped to ip.
func (d *Datapath) forgetPodNetNS(ip netip.Addr) error {
	if !ip.Is4() {
		return nil
	}
	want := be32(ip)
	var (
		stale []uint64
		addr  uint32
		c     uint64
	)
	it := d.objs.WeftNetnsPods.Iterate()
	for it.Next(&c, &addr) {
		if addr == want {
			stale = append(stale, c)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read pod namespaces: %w", err)
	}
	for _, c := range stale {
		if err := d.objs.WeftNetnsPods.Delete(c); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("forget netns of pod %s: %w", ip, err)
		}
	}
	return nil
}

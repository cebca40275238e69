package datapath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Attachments are pinned as <linkDir>/<program>@<device or "cgroup">, so a
// restarted agent finds and updates them in place: the old program keeps
// running until the new one replaces it atomically.

func (d *Datapath) linkPin(prog, target string) string {
	return filepath.Join(d.linkDir, prog+"@"+target)
}

// attachIngress runs prog on the ingress of device ifname, replacing the
// program a previous run attached there.
func (d *Datapath) attachIngress(ifname, name string, prog *ebpf.Program) error {
	return d.attachTC(ifname, name, prog, false)
}

// attachEgress is attachIngress for the egress side.
func (d *Datapath) attachEgress(ifname, name string, prog *ebpf.Program) error {
	return d.attachTC(ifname, name, prog, true)
}

func (d *Datapath) attachTC(ifname, name string, prog *ebpf.Program, egress bool) error {
	lnk, err := d.nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("find device %s: %w", ifname, err)
	}
	ifindex := lnk.Attrs().Index
	if d.cfg.LegacyTC {
		d.clsact.Store(true)
		return d.attachLegacy(lnk, name, prog, egress)
	}
	attach := ebpf.AttachTCXIngress
	if egress {
		attach = ebpf.AttachTCXEgress
	}
	pin := d.linkPin(name, ifname)
	err = d.ns.do(func() error {
		if old, err := link.LoadPinnedLink(pin, nil); err == nil {
			info, ierr := old.Info()
			if ierr == nil && info.TCX() != nil && int(info.TCX().Ifindex) == ifindex {
				uerr := old.Update(prog)
				old.Close()
				if uerr == nil {
					return nil
				}
			} else {
				old.Unpin() // attached to a device that is gone
				old.Close()
			}
		}
		l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: prog, Attach: attach})
		if err != nil {
			return err
		}
		defer l.Close()
		if err := l.Pin(pin); err != nil {
			return fmt.Errorf("pin link %s: %w", pin, err)
		}
		return nil
	})
	if errors.Is(err, ebpf.ErrNotSupported) {
		d.clsact.Store(true)
		d.log.Info("tcx unsupported, attaching with clsact", "device", ifname)
		return d.attachLegacy(lnk, name, prog, egress)
	}
	if err != nil {
		return fmt.Errorf("attach %s to %s: %w", name, ifname, err)
	}
	return nil
}

// attachLegacy attaches prog as a direct-action cls_bpf filter on clsact
// ingress or egress. The filter outlives the process; detachTC removes it
// (or the device's deletion).
func (d *Datapath) attachLegacy(lnk netlink.Link, name string, prog *ebpf.Program, egress bool) error {
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: lnk.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := d.nl.QdiscReplace(qdisc); err != nil {
		return fmt.Errorf("add clsact to %s: %w", lnk.Attrs().Name, err)
	}
	if err := d.nl.FilterReplace(legacyFilter(lnk, name, prog.FD(), egress)); err != nil {
		return fmt.Errorf("attach %s to %s with cls_bpf: %w", name, lnk.Attrs().Name, err)
	}
	return nil
}

func legacyFilter(lnk netlink.Link, name string, fd int, egress bool) *netlink.BpfFilter {
	parent := uint32(netlink.HANDLE_MIN_INGRESS)
	if egress {
		parent = netlink.HANDLE_MIN_EGRESS
	}
	return &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: lnk.Attrs().Index,
			Parent:    parent,
			Handle:    netlink.MakeHandle(0, 1),
			Protocol:  unix.ETH_P_ALL,
			Priority:  1,
		},
		Fd:           fd,
		Name:         name,
		DirectAction: true,
	}
}

// detachTC removes what attachIngress or attachEgress attached as name;
// a missing device or attachment is not an error.
func (d *Datapath) detachTC(ifname, name string) error {
	if err := unpinLink(d.linkPin(name, ifname)); err != nil {
		return err
	}
	lnk, err := d.nl.LinkByName(ifname)
	if err != nil {
		return nil
	}
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		filters, _ := d.nl.FilterList(lnk, parent)
		for _, f := range filters {
			if bf, ok := f.(*netlink.BpfFilter); ok && bf.Name == name {
				if err := d.nl.FilterDel(f); err != nil {
					return fmt.Errorf("detach %s from %s: %w", name, ifname, err)
				}
			}
		}
	}
	return nil
}

// attachCgroup attaches a socket program to the configured cgroup.
func (d *Datapath) attachCgroup(name string, typ ebpf.AttachType, prog *ebpf.Program) error {
	pin := d.linkPin(name, "cgroup")
	if old, err := link.LoadPinnedLink(pin, nil); err == nil {
		err := old.Update(prog)
		old.Close()
		if err == nil {
			return nil
		}
		if err := unpinLink(pin); err != nil {
			return err
		}
	}
	l, err := link.AttachCgroup(link.CgroupOptions{Path: d.cfg.CgroupPath, Attach: typ, Program: prog})
	if err != nil {
		return fmt.Errorf("attach %s to cgroup %s: %w", name, d.cfg.CgroupPath, err)
	}
	defer l.Close()
	if err := l.Pin(pin); err != nil {
		return fmt.Errorf("pin link %s: %w", pin, err)
	}
	return nil
}

// unpinLink detaches a pinned link; a missing pin is not an error.
func unpinLink(pin string) error {
	l, err := link.LoadPinnedLink(pin, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		// Not loadable as a link: remove the file so the pin dir can go.
		if rerr := os.Remove(pin); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return fmt.Errorf("remove pin %s: %w", pin, rerr)
		}
		return nil
	}
	defer l.Close()
	if err := l.Unpin(); err != nil {
		return fmt.Errorf("unpin link %s: %w", pin, err)
	}
	return nil
}

// AttachMode says how tc programs are attached on this node: "tcx", or
// "clsact" where the kernel lacks tcx or LegacyTC asks for it.
func (d *Datapath) AttachMode() string {
	if d.clsact.Load() || d.cfg.LegacyTC {
		return "clsact"
	}
	return "tcx"
}

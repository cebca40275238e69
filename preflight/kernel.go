package preflight

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// MinKernel is the oldest kernel the datapath runs on (bpf_redirect_peer,
// bpf_redirect_neigh and ring buffers).
var MinKernel = [2]int{5, 10}

// capabilities weft-agent needs: bit number and name.
var capabilities = []struct {
	bit  uint
	name string
}{{12, "CAP_NET_ADMIN"}, {21, "CAP_SYS_ADMIN"}, {39, "CAP_BPF"}}

func checkPrivileges(context.Context, *Config, *host) (bool, string, string) {
	eff, err := effectiveCaps()
	if err != nil {
		return false, err.Error(), "run on Linux with /proc mounted"
	}
	var missing []string
	for _, c := range capabilities {
		if eff&(1<<c.bit) == 0 {
			missing = append(missing, c.name)
		}
	}
	if len(missing) > 0 {
		return false, "missing " + strings.Join(missing, ", ") + fmt.Sprintf(" (uid %d)", os.Geteuid()),
			"run as root (sudo, or the systemd unit deploy/systemd/weft-agent.service)"
	}
	return true, fmt.Sprintf("uid %d with CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF", os.Geteuid()), ""
}

// effectiveCaps reads CapEff of this process.
func effectiveCaps() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read capabilities: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("read capabilities: no CapEff in /proc/self/status")
}

func checkKernel(context.Context, *Config, *host) (bool, string, string) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false, fmt.Sprintf("uname: %v", err), "run on Linux"
	}
	release := unix.ByteSliceToString(u.Release[:])
	major, minor, ok := parseRelease(release)
	want := fmt.Sprintf("%d.%d", MinKernel[0], MinKernel[1])
	if !ok {
		return false, fmt.Sprintf("cannot read kernel release %q", release), "run a Linux kernel " + want + " or newer"
	}
	if major < MinKernel[0] || major == MinKernel[0] && minor < MinKernel[1] {
		return false, fmt.Sprintf("Linux %s is older than %s", release, want), "upgrade to a Linux kernel " + want + " or newer (Debian 12: 6.1)"
	}
	return true, "Linux " + release + " (needs " + want + "+)", ""
}

// parseRelease reads "6.18.44-foo" as 6, 18.
func parseRelease(r string) (major, minor int, ok bool) {
	parts := strings.SplitN(r, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return major, minor, err1 == nil && err2 == nil
}

func checkBPF(context.Context, *Config, *host) (bool, string, string) {
	fix := "run as root on a kernel built with CONFIG_BPF_SYSCALL, CONFIG_NET_CLS_BPF, CONFIG_CGROUP_BPF"
	for _, pt := range []ebpf.ProgramType{ebpf.SchedCLS, ebpf.CGroupSockAddr} {
		if err := features.HaveProgramType(pt); err != nil {
			return false, fmt.Sprintf("program type %s: %v", pt, err), fix
		}
	}
	for _, mt := range []ebpf.MapType{ebpf.LPMTrie, ebpf.LRUHash, ebpf.RingBuf, ebpf.PerCPUArray} {
		if err := features.HaveMapType(mt); err != nil {
			return false, fmt.Sprintf("map type %s: %v", mt, err), fix
		}
	}
	return true, "program types sched_cls, cgroup_sock_addr; maps lpm_trie, lru_hash, ringbuf, percpu_array", ""
}

// checkTC: tcx where the kernel has it, else clsact with cls_bpf. The
// probe attaches to an interface that does not exist, so nothing changes.
func checkTC(context.Context, *Config, *host) (bool, string, string) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.SchedCLS, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		return false, fmt.Sprintf("load a tc program: %v", err), "see the bpf check"
	}
	defer prog.Close()
	l, err := link.AttachTCX(link.TCXOptions{Interface: math.MaxInt32, Program: prog, Attach: ebpf.AttachTCXIngress})
	if err == nil {
		l.Close()
		return true, "tcx", ""
	}
	if !errors.Is(err, ebpf.ErrNotSupported) {
		return true, "tcx", "" // the kernel knows tcx and refused the missing interface
	}
	var missing []string
	for _, m := range []string{"sch_ingress", "cls_bpf"} {
		if !moduleAvailable(m) {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		return false, "no tcx (kernel < 6.6) and no " + strings.Join(missing, ", ") + " for clsact",
			"install the kernel modules package of this kernel (CONFIG_NET_SCH_INGRESS, CONFIG_NET_CLS_BPF) or run Linux 6.6+"
	}
	return true, "clsact with cls_bpf (no tcx: kernel < 6.6)", ""
}

func checkVXLAN(_ context.Context, c *Config, _ *host) (bool, string, string) {
	if c.RoutingMode != RoutingTunnel {
		return true, "not needed with --routing-mode " + c.RoutingMode, ""
	}
	if moduleAvailable("vxlan") {
		return true, "vxlan module available", ""
	}
	return false, "no vxlan module in this kernel (needed by --routing-mode tunnel)",
		"install this kernel's modules package (CONFIG_VXLAN), or use --routing-mode native where nodes share an L2 network or routes"
}

// moduleAvailable reports whether a kernel module is loaded, built in, or
// installed for the running kernel (the kernel loads it on first use).
func moduleAvailable(name string) bool {
	if _, err := os.Stat(filepath.Join("/sys/module", name)); err == nil {
		return true
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	dir := filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:]))
	for _, f := range []string{"modules.builtin", "modules.dep"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			path, _, _ := strings.Cut(line, ":")
			base := filepath.Base(path)
			if m, _, ok := strings.Cut(base, ".ko"); ok && strings.ReplaceAll(m, "-", "_") == name {
				return true
			}
		}
	}
	return false
}

package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/testenv"
)

// figure reports a measured reconvergence time in a form docs/reliability.md
// quotes: "FIGURE <fault>: <what> <duration>". Tests never assert on it.
func figure(t *testing.T, fault, what string, d time.Duration) {
	t.Helper()
	t.Logf("FIGURE %s: %s %v", fault, what, d.Round(10*time.Millisecond))
}

// flow is an established TCP connection between two pods: the client
// sends a sequence number every 20ms and reads it back from an echo
// server. Each echo may take up to patience (a fault that stalls the
// path shows as retransmissions, not as an error); a reset or a wrong
// echo is a lost flow.
type flow struct {
	mu       sync.Mutex
	echoed   uint64
	lastEcho time.Time
	resumed  time.Time // the first echo after a stall of more than a second
	err      error
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

func startFlow(t *testing.T, e *testenv.Env, src, dst testenv.Pod, port int, patience time.Duration) *flow {
	t.Helper()
	return startFlowTo(t, e, src, dst, dst.IP, port, patience)
}

// startFlowTo is startFlow with src dialling dst at address dial (e.g. its
// global address) instead of its pod address.
func startFlowTo(t *testing.T, e *testenv.Env, src, dst testenv.Pod, dial string, port int, patience time.Duration) *flow {
	t.Helper()
	listen := net.JoinHostPort(dst.IP, strconv.Itoa(port))
	addr := net.JoinHostPort(dial, strconv.Itoa(port))
	dt, err := e.Target("pod/" + dst.Name)
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := dt.Do(func() (err error) { ln, err = net.Listen("tcp4", listen); return err }); err != nil {
		t.Fatalf("listen in %s: %v", dst.Name, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	st, err := e.Target("pod/" + src.Name)
	if err != nil {
		t.Fatal(err)
	}
	var c net.Conn
	if err := st.Do(func() (err error) { c, err = net.DialTimeout("tcp4", addr, 5*time.Second); return err }); err != nil {
		t.Fatalf("connect %s -> %s: %v", src.Name, addr, err)
	}
	f := &flow{stop: make(chan struct{}), done: make(chan struct{}), lastEcho: time.Now()}
	go f.run(c, patience)
	t.Cleanup(f.close)
	return f
}

func (f *flow) run(c net.Conn, patience time.Duration) {
	defer close(f.done)
	defer c.Close()
	var out, in [8]byte
	for seq := uint64(1); ; seq++ {
		select {
		case <-f.stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		binary.BigEndian.PutUint64(out[:], seq)
		c.SetDeadline(time.Now().Add(patience))
		_, err := c.Write(out[:])
		if err == nil {
			_, err = io.ReadFull(c, in[:])
		}
		if err == nil && binary.BigEndian.Uint64(in[:]) != seq {
			err = fmt.Errorf("echo %d came back as %d", seq, binary.BigEndian.Uint64(in[:]))
		}
		f.mu.Lock()
		if err != nil {
			f.err = err
		} else {
			now := time.Now()
			if now.Sub(f.lastEcho) > time.Second {
				f.resumed = now
			}
			f.echoed, f.lastEcho = seq, now
		}
		f.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (f *flow) close() { f.once.Do(func() { close(f.stop); <-f.done }) }

func (f *flow) state() (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.echoed, f.err
}

// advance waits until the flow echoed n more messages; a broken flow
// fails the test (the fault lost an established connection).
func (f *flow) advance(t *testing.T, n uint64, within time.Duration, what string) {
	t.Helper()
	from, _ := f.state()
	eventually(t, within, what, func() error {
		got, err := f.state()
		if err != nil {
			t.Fatalf("%s: the established TCP flow broke after %d echoes: %v", what, got, err)
		}
		if got < from+n {
			return fmt.Errorf("%d of %d further echoes", got-from, n)
		}
		return nil
	})
}

// resumedAfter waits until the flow, stalled by a fault, echoes again
// after t0 and returns how long after t0 its first echo came.
func (f *flow) resumedAfter(t *testing.T, t0 time.Time, within time.Duration, what string) time.Duration {
	t.Helper()
	var took time.Duration
	eventually(t, within, what, func() error {
		f.mu.Lock()
		got, resumed, err := f.echoed, f.resumed, f.err
		f.mu.Unlock()
		if err != nil {
			t.Fatalf("%s: the established TCP flow broke after %d echoes: %v", what, got, err)
		}
		if !resumed.After(t0) {
			return fmt.Errorf("no echo since %v", t0.Format(time.TimeOnly))
		}
		took = resumed.Sub(t0)
		return nil
	})
	return took
}

// newPodReachable creates pod name on node and returns how long after t0
// it was reachable from src (the whole path of a new workload: CNI ADD,
// identity and address, publication, the other node's ipcache).
func newPodReachable(t *testing.T, e *testenv.Env, t0 time.Time, src testenv.Pod, name, node string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var p testenv.Pod
	eventually(t, 2*time.Minute, "create pod "+name+" on "+node, func() (err error) {
		p, err = e.AddPod(ctx, testenv.PodSpec{Name: name, Node: node, Labels: map[string]string{"app": name}})
		return err
	})
	waitReachable(t, e, src, p)
	return time.Since(t0)
}

// storeSynced waits until every agent of the environment reaches its store
// and has listed every kind, and returns how long after t0.
func storeSynced(t *testing.T, e *testenv.Env, t0 time.Time) time.Duration {
	t.Helper()
	eventually(t, 2*time.Minute, "every agent reaches its store and is synced", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, n := range e.Nodes {
			a, closeFn, err := e.Agent(ctx, n.Name)
			if err != nil {
				return err
			}
			st, err := a.Status(ctx, &agentapi.StatusRequest{})
			closeFn()
			if err != nil {
				return err
			}
			if s := st.GetStore(); !s.GetQuorum() || !s.GetSynced() || s.GetError() != "" {
				return fmt.Errorf("%s: store quorum=%v synced=%v %s", n.Name, s.GetQuorum(), s.GetSynced(), s.GetError())
			}
		}
		return nil
	})
	return time.Since(t0)
}

// storeProcs are the pid of cluster's store process and its descendants
// (the Consul agent runs as a child of `weft testenv run-store`).
func storeProcs(t *testing.T, e *testenv.Env, cluster string) []int {
	t.Helper()
	c, err := e.Cluster(cluster)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(c.StorePIDFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("store pid file %s: %v", c.StorePIDFile, err)
	}
	pids := []int{pid}
	for i := 0; i < len(pids); i++ {
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pids[i], pids[i]))
		for _, f := range strings.Fields(string(kids)) {
			if k, err := strconv.Atoi(f); err == nil {
				pids = append(pids, k)
			}
		}
	}
	return pids
}

// signalStore sends sig to cluster's store and its descendants.
func signalStore(t *testing.T, e *testenv.Env, cluster string, sig syscall.Signal) {
	t.Helper()
	for _, pid := range storeProcs(t, e, cluster) {
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatalf("signal store process %d of %s: %v", pid, cluster, err)
		}
	}
}

// pauseStore stops cluster's store with SIGSTOP, and resumes it when the
// test ends if the test did not.
func pauseStore(t *testing.T, e *testenv.Env, cluster string) (resume func() time.Time) {
	t.Helper()
	signalStore(t, e, cluster, syscall.SIGSTOP)
	var once sync.Once
	var at time.Time
	resume = func() time.Time {
		once.Do(func() { signalStore(t, e, cluster, syscall.SIGCONT); at = time.Now() })
		return at
	}
	t.Cleanup(func() { resume() })
	return resume
}

// killStore kills cluster's store (kill -9; the Consul child dies with
// it) and returns a function that starts it again the way testenv did,
// with its data directory (a Consul dev agent starts empty).
func killStore(t *testing.T, e *testenv.Env, cluster string) (restart func() time.Time) {
	t.Helper()
	pids := storeProcs(t, e, cluster)
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pids[0]))
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for a := range strings.SplitSeq(strings.TrimRight(string(raw), "\x00"), "\x00") {
		args = append(args, a)
	}
	// The host-side forwarder was an inherited socket: it dies with the
	// store and is not restored.
	for i := 0; i < len(args); i++ {
		if args[i] == "--forward-fd" && i+1 < len(args) {
			args = append(args[:i], args[i+2:]...)
			i--
		}
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	eventually(t, 30*time.Second, "the killed store is gone", func() error {
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil {
				if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(st), ") Z ") {
					return fmt.Errorf("pid %d still runs", pid)
				}
			}
		}
		return nil
	})
	return func() time.Time {
		t.Helper()
		c, err := e.Cluster(cluster)
		if err != nil {
			t.Fatal(err)
		}
		logf, err := os.OpenFile(c.StoreLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer logf.Close()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), testenv.MarkerVar+"="+e.Name)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := testenv.InNetNS(e.Underlay, cmd.Start); err != nil {
			t.Fatalf("restart the store of %s: %v", cluster, err)
		}
		at := time.Now()
		go cmd.Wait() //nolint:errcheck // reaped; testenv down ends it (it carries the marker)
		if err := os.WriteFile(c.StorePIDFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		u := strings.TrimPrefix(c.StoreEndpoints[0], "http://")
		eventually(t, time.Minute, "the restarted store of "+cluster+" listens", func() error {
			return testenv.InNetNS(e.Underlay, func() error {
				conn, err := net.DialTimeout("tcp4", u, time.Second)
				if err == nil {
					conn.Close()
				}
				return err
			})
		})
		return at
	}
}

// partition drops, in the underlay namespace only, every packet between
// the nodes of clusters a and b and from either's nodes to the other's
// store address (its apiserver): a tcx program on the ingress of each of
// their nodes' bridge ports drops IPv4 frames to the blocked destinations.
// (The nodes share one bridged subnet: iptables in the underlay would see
// their packets only with the host's bridge netfilter, and this kernel has
// no tc classifier but BPF.) heal detaches the programs.
func partition(t *testing.T, e *testenv.Env, a, b string) (heal func() time.Time) {
	t.Helper()
	ca, err1 := e.Cluster(a)
	cb, err2 := e.Cluster(b)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	block := map[string][]netip.Prefix{ // cluster -> destinations its nodes may not reach
		a: {netip.MustParsePrefix(fmt.Sprintf("192.168.%d.0/24", cb.ID)), netip.PrefixFrom(storeAddr(cb.ID), 32)},
		b: {netip.MustParsePrefix(fmt.Sprintf("192.168.%d.0/24", ca.ID)), netip.PrefixFrom(storeAddr(ca.ID), 32)},
	}
	var links []link.Link
	var progs []*ebpf.Program
	undo := func() error {
		var errs []error
		for _, l := range links {
			errs = append(errs, l.Close())
		}
		for _, p := range progs {
			errs = append(errs, p.Close())
		}
		links, progs = nil, nil
		return errors.Join(errs...)
	}
	err := testenv.InNetNS(e.Underlay, func() error {
		for _, n := range e.Nodes {
			if block[n.Cluster] == nil {
				continue
			}
			prog, err := dropProgram(block[n.Cluster])
			if err != nil {
				return err
			}
			progs = append(progs, prog)
			// testenv names a node's bridge port after the node.
			port, err := net.InterfaceByName(n.Name)
			if err != nil {
				return fmt.Errorf("bridge port of %s: %w", n.Name, err)
			}
			l, err := link.AttachTCX(link.TCXOptions{Interface: port.Index, Program: prog, Attach: ebpf.AttachTCXIngress})
			if err != nil {
				return fmt.Errorf("attach the drop program to %s: %w", n.Name, err)
			}
			links = append(links, l)
		}
		return nil
	})
	if err != nil {
		undo()
		t.Fatalf("partition %s from %s: %v", a, b, err)
	}
	var once sync.Once
	var at time.Time
	heal = func() time.Time {
		once.Do(func() {
			if err := undo(); err != nil {
				t.Errorf("heal the partition: %v", err)
			}
			at = time.Now()
		})
		return at
	}
	t.Cleanup(func() { heal() })
	return heal
}

func storeAddr(cluster int) netip.Addr {
	return netip.AddrFrom4([4]byte{192, 168, 0, byte(10 + cluster)})
}

// dropProgram is a tc program that drops IPv4 frames to any of dsts and
// passes everything else on.
func dropProgram(dsts []netip.Prefix) (*ebpf.Program, error) {
	const (
		skbData, skbDataEnd = 76, 80 // offsets in struct __sk_buff
		tcxNext, tcxDrop    = -1, 2
	)
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, skbData, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, skbDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 34), // Ethernet header + IPv4 header up to the destination
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half),
		asm.JNE.Imm32(asm.R5, int32(binary.LittleEndian.Uint16([]byte{0x08, 0x00})), "pass"),
		asm.LoadMem(asm.R5, asm.R2, 30, asm.Word), // destination, network order as loaded
	}
	for _, d := range dsts {
		mask := binary.LittleEndian.Uint32(net.CIDRMask(d.Bits(), 32))
		addr := d.Masked().Addr().As4()
		insns = append(insns,
			asm.Mov.Reg32(asm.R0, asm.R5),
			asm.And.Imm32(asm.R0, int32(mask)),
			asm.JEq.Imm32(asm.R0, int32(binary.LittleEndian.Uint32(addr[:])), "drop"),
		)
	}
	insns = append(insns,
		asm.Mov.Imm(asm.R0, tcxNext).WithSymbol("pass"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, tcxDrop).WithSymbol("drop"),
		asm.Return(),
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "weft_e2e_part", Type: ebpf.SchedCLS, License: "GPL", Instructions: insns})
	if err != nil {
		return nil, fmt.Errorf("load the drop program: %w", err)
	}
	return prog, nil
}

package datapath_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/datapath/datapathtest"
	"github.com/weftnet/weft/internal/testgate"
)

func TestConnectivity(t *testing.T) {
	testgate.Root(t)
	for _, tc := range []struct {
		name string
		mode datapath.Mode
		opts []datapathtest.Option
	}{
		{"tunnel", datapath.ModeTunnel, nil},
		{"native", datapath.ModeNative, nil},
		{"tunnel with clsact", datapath.ModeTunnel, []datapathtest.Option{datapathtest.WithLegacyTC()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			mode := tc.mode
			lab := datapathtest.New(t, mode, 2, tc.opts...)
			n1, n2 := lab.Nodes[0], lab.Nodes[1]
			a1, a2 := n1.AddPod("a1", 1001), n1.AddPod("a2", 1002)
			b1, b2 := n2.AddPod("b1", 1003), n2.AddPod("b2", 1004)
			lab.Wire()
			for _, p := range []*datapathtest.Pod{a1, a2, b1, b2} {
				p.ServeName(80)
			}
			flows, flows2 := flowReader(t, n1), flowReader(t, n2)

			for _, tc := range []struct {
				name     string
				from, to *datapathtest.Pod
			}{
				{"same node", a1, a2},
				{"same node reverse", a2, a1},
				{"cross node", a1, b1},
				{"cross node reverse", b2, a2},
			} {
				t.Run(tc.name, func(t *testing.T) {
					if err := datapathtest.Eventually(ctx, 10*time.Second, func(ctx context.Context) error {
						return tc.from.Ping(ctx, tc.to.IP)
					}); err != nil {
						t.Fatalf("ping %s -> %s: %v", tc.from.Name, tc.to.Name, err)
					}
					got, err := tc.from.Fetch(ctx, tc.to.Addr(80))
					if err != nil || got != tc.to.Name {
						t.Fatalf("tcp %s -> %s: got %q, %v", tc.from.Name, tc.to.Name, got, err)
					}
				})
			}

			t.Run("host to pods", func(t *testing.T) {
				for _, p := range []*datapathtest.Pod{a1, b1} {
					if got, err := n1.Fetch(ctx, p.Addr(80)); err != nil || got != p.Name {
						t.Fatalf("node 1 -> %s: got %q, %v", p.Name, got, err)
					}
				}
			})

			t.Run("events of a new cross-node flow at every point", func(t *testing.T) {
				out := map[datapath.Mode]string{datapath.ModeTunnel: "to-overlay", datapath.ModeNative: "to-netdev"}[mode]
				in := map[datapath.Mode]string{datapath.ModeTunnel: "from-overlay", datapath.ModeNative: "from-netdev"}[mode]
				// Where it enters Weft on node 1, where it leaves, where it
				// enters node 2 and where it is delivered, in that order.
				for _, at := range []struct {
					r     *datapath.FlowReader
					point string
				}{{flows, "from-endpoint"}, {flows, out}, {flows2, in}, {flows2, "to-endpoint"}} {
					f := readFlow(t, at.r, func(f datapath.Flow) bool {
						return !f.Dropped && f.Source.Addr() == a1.IP && f.Destination == b1.Addr(80) && f.Point.String() == at.point
					})
					if f.SourceIdentity != a1.Identity || f.DestinationIdentity != b1.Identity || f.Reason != datapath.ReasonForwarded {
						t.Fatalf("flow %v at %s: want identities %d -> %d, forwarded", f, at.point, a1.Identity, b1.Identity)
					}
				}
			})

			t.Run("streams survive reload", func(t *testing.T) {
				b1.ServeEcho(7)
				np := datapath.Service{Frontend: netip.AddrPortFrom(n2.UnderlayIP, 30007), Proto: datapath.ProtoTCP,
					Type: datapath.NodePort, Backends: []datapath.Backend{{Addr: b1.Addr(7)}}}
				upsertOn(t, n2, np)
				direct, err := a1.Dial(ctx, b1.Addr(7))
				if err != nil {
					t.Fatal(err)
				}
				defer direct.Close()
				nodePort, err := n1.Dial(ctx, np.Frontend)
				if err != nil {
					t.Fatal(err)
				}
				defer nodePort.Close()
				exchange := func(conn net.Conn, msg string) {
					t.Helper()
					conn.SetDeadline(time.Now().Add(10 * time.Second))
					if _, err := io.WriteString(conn, msg); err != nil {
						t.Fatalf("write %q: %v", msg, err)
					}
					buf := make([]byte, len(msg))
					if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != msg {
						t.Fatalf("echo of %q: got %q, %v", msg, buf, err)
					}
				}
				exchange(direct, "before")
				exchange(nodePort, "before")
				for round := range 2 {
					for _, n := range lab.Nodes {
						if err := n.DP.Close(); err != nil {
							t.Fatal(err)
						}
						n.Start() // reloads every program, re-attaches node programs
					}
					lab.Wire()          // re-runs every reconciler, re-attaches endpoint programs
					upsertOn(t, n2, np) // and the service's
					must(t, n2.DP.PruneServices(ctx, []datapath.ServiceKey{{Frontend: np.Frontend, Proto: np.Proto}}))
					if tc.opts == nil { // tcx: the pinned links now run the new programs
						for _, n := range lab.Nodes {
							mustRun(t, n, "from_netdev@ul0", n.DP.Objects().FromNetdev)
							mustRun(t, n, "from_container@"+n.Pods[0].HostDevice, n.DP.Objects().FromContainer)
						}
					}
					exchange(direct, fmt.Sprintf("after reload %d", round))
					exchange(nodePort, fmt.Sprintf("after reload %d", round))
				}
			})
		})
	}
}

// mustRun checks that the tcx link pinned as name on node n runs prog.
func mustRun(t *testing.T, n *datapathtest.Node, name string, prog *ebpf.Program) {
	t.Helper()
	l, err := link.LoadPinnedLink(filepath.Join(n.Config.PinDir(), "links", name), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		t.Fatal(err)
	}
	pinfo, err := prog.Info()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := pinfo.ID()
	if info.Program != want {
		t.Fatalf("link %s on %s runs program %d, want the reloaded %d", name, n.Name, info.Program, want)
	}
}

package datapath_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/datapath/datapathtest"
	"github.com/weftnet/weft/internal/testgate"
)

func TestServices(t *testing.T) {
	testgate.Root(t)
	for _, mode := range []datapath.Mode{datapath.ModeTunnel, datapath.ModeNative} {
		t.Run(string(mode), func(t *testing.T) {
			ctx := context.Background()
			lab := datapathtest.New(t, mode, 2)
			n1, n2 := lab.Nodes[0], lab.Nodes[1]
			client := n1.AddPod("client", 1001)
			backends := []*datapathtest.Pod{n1.AddPod("web-a", 1100), n2.AddPod("web-b", 1100), n2.AddPod("web-c", 1100)}
			lab.Wire()
			for _, b := range backends {
				b.ServeName(8080)
			}
			clusterIP := netip.MustParseAddrPort("10.96.0.10:80")
			upsert := func(s datapath.Service, pods ...*datapathtest.Pod) {
				t.Helper()
				for _, n := range lab.Nodes {
					s.Backends = nil
					for _, p := range pods {
						s.Backends = append(s.Backends, datapath.Backend{Addr: p.Addr(8080)})
					}
					if err := n.DP.UpsertService(ctx, s); err != nil {
						t.Fatal(err)
					}
				}
			}
			svc := datapath.Service{Frontend: clusterIP, Proto: datapath.ProtoTCP, Type: datapath.ClusterIP}
			upsert(svc, backends...)

			t.Run("cluster ip uses backends on both nodes", func(t *testing.T) {
				seen := fetchUntil(t, client, clusterIP, func(seen map[string]int) bool {
					return seen["web-a"] > 0 && (seen["web-b"] > 0 || seen["web-c"] > 0)
				})
				t.Logf("backends chosen: %v", seen)
			})

			t.Run("flows name the frontend of load-balanced connections only", func(t *testing.T) {
				flows := flowReader(t, n1)
				since := monotonicNow(t) // the reader also holds earlier tests' events
				got, err := client.Fetch(ctx, clusterIP)
				if err != nil {
					t.Fatal(err)
				}
				var backend *datapathtest.Pod
				for _, b := range backends {
					if b.Name == got {
						backend = b
					}
				}
				if backend == nil {
					t.Fatalf("cluster ip answered %q, no backend of that name", got)
				}
				fromClient := func(f datapath.Flow) bool {
					return f.Time > since && !f.Dropped && f.Source.Addr() == client.IP && f.Destination == backend.Addr(8080) && f.Point.String() == "from-endpoint"
				}
				if f := readFlow(t, flows, fromClient); f.Frontend != clusterIP || f.ServiceID == 0 {
					t.Fatalf("connection through %s to %s: flow %v names frontend %v (service %d), want %s", clusterIP, got, f, f.Frontend, f.ServiceID, clusterIP)
				}
				since = monotonicNow(t)
				if _, err := client.Fetch(ctx, backend.Addr(8080)); err != nil {
					t.Fatal(err)
				}
				if f := readFlow(t, flows, fromClient); f.Frontend.IsValid() || f.ServiceID != 0 {
					t.Fatalf("a direct connection to %s is reported as load-balanced for %v (service %d)", got, f.Frontend, f.ServiceID)
				}
			})

			t.Run("cluster ip from the host", func(t *testing.T) {
				seen := map[string]bool{}
				for range 40 {
					got, err := n1.Fetch(ctx, clusterIP)
					if err != nil {
						t.Fatalf("node 1 -> %v: %v", clusterIP, err)
					}
					seen[got] = true
					if len(seen) == len(backends) {
						return
					}
				}
				t.Fatalf("from the host, 40 connections reached %v, want all of %d backends", seen, len(backends))
			})

			t.Run("removed backend is no longer chosen", func(t *testing.T) {
				upsert(svc, backends[0], backends[1])
				for range 20 {
					got, err := client.Fetch(ctx, clusterIP)
					if err != nil {
						t.Fatal(err)
					}
					if got == "web-c" {
						t.Fatal("removed backend web-c was chosen")
					}
				}
			})

			t.Run("session affinity", func(t *testing.T) {
				aff := svc
				aff.SessionAffinity = time.Hour
				upsert(aff, backends...)
				first, err := client.Fetch(ctx, clusterIP)
				if err != nil {
					t.Fatal(err)
				}
				for range 10 {
					if got, err := client.Fetch(ctx, clusterIP); err != nil || got != first {
						t.Fatalf("with affinity got %q, %v; want %q every time", got, err, first)
					}
				}
				upsert(svc, backends...)
			})

			t.Run("udp cluster ip answers from the frontend", func(t *testing.T) {
				dns := netip.MustParseAddrPort("10.96.0.53:53")
				var udp datapath.Service
				for _, n := range lab.Nodes {
					udp = datapath.Service{Frontend: dns, Proto: datapath.ProtoUDP, Type: datapath.ClusterIP}
					for _, b := range backends {
						udp.Backends = append(udp.Backends, datapath.Backend{Addr: b.Addr(5353)})
					}
					upsertOn(t, n, udp)
				}
				for _, b := range backends {
					b.ServeUDPName(5353)
				}
				leave := n1.JoinCgroup()
				defer leave()
				err := datapathtest.InNS(client.NS, func() error {
					conn, err := net.ListenUDP("udp4", nil) // unconnected: sendmsg4/recvmsg4
					if err != nil {
						return err
					}
					defer conn.Close()
					conn.SetDeadline(time.Now().Add(5 * time.Second))
					if _, err := conn.WriteToUDPAddrPort([]byte("q"), dns); err != nil {
						return err
					}
					buf := make([]byte, 64)
					n, from, err := conn.ReadFromUDPAddrPort(buf)
					if err != nil {
						return err
					}
					if from != dns || !strings.HasPrefix(string(buf[:n]), "web-") {
						return fmt.Errorf("answer %q from %v, want a backend's name from %v", buf[:n], from, dns)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			})

			t.Run("node port from the other node", func(t *testing.T) {
				np := netip.AddrPortFrom(n2.UnderlayIP, 30080)
				upsertOn(t, n2, datapath.Service{Frontend: np, Proto: datapath.ProtoTCP, Type: datapath.NodePort,
					Backends: []datapath.Backend{{Addr: backends[1].Addr(8080)}}})
				// The reply is reverse-NATed on n2: otherwise n1's TCP
				// stack would see a SYN-ACK from the pod and reset.
				got, err := n1.Fetch(ctx, np)
				if err != nil || got != "web-b" {
					t.Fatalf("node port %s from node 1: got %q, %v; want web-b", np, got, err)
				}
				got, err = client.Fetch(ctx, np)
				if err != nil || got != "web-b" {
					t.Fatalf("node port %s from a pod of node 1: got %q, %v; want web-b", np, got, err)
				}
			})

			t.Run("node port with a backend on another node", func(t *testing.T) {
				np := netip.AddrPortFrom(n2.UnderlayIP, 30081)
				upsertOn(t, n2, datapath.Service{Frontend: np, Proto: datapath.ProtoTCP, Type: datapath.NodePort,
					Backends: []datapath.Backend{{Addr: backends[0].Addr(8080)}}})
				for _, from := range []interface {
					Fetch(context.Context, netip.AddrPort) (string, error)
				}{n1, client} {
					if got, err := from.Fetch(ctx, np); err != nil || got != "web-a" {
						t.Fatalf("node port %s -> web-a on node 1: got %q, %v", np, got, err)
					}
				}
			})

			t.Run("external ip", func(t *testing.T) {
				ext := netip.MustParseAddrPort("172.31.0.1:80")
				// The router of the outside world: node 1 sends the
				// external IP to node 2.
				err := datapathtest.InNS(n1.NS, func() error {
					return netlink.RouteAdd(&netlink.Route{Dst: &net.IPNet{IP: ext.Addr().AsSlice(), Mask: net.CIDRMask(32, 32)}, Gw: n2.UnderlayIP.AsSlice()})
				})
				if err != nil {
					t.Fatal(err)
				}
				upsertOn(t, n2, datapath.Service{Frontend: ext, Proto: datapath.ProtoTCP, Type: datapath.ExternalIP,
					Backends: []datapath.Backend{{Addr: backends[2].Addr(8080)}}})
				if got, err := n1.Fetch(ctx, ext); err != nil || got != "web-c" {
					t.Fatalf("external ip %s from node 1: got %q, %v; want web-c", ext, got, err)
				}
			})

			t.Run("no backend drops with its reason", func(t *testing.T) {
				flows := flowReader(t, n1)
				empty := netip.MustParseAddrPort("10.96.0.11:80")
				upsertOn(t, n1, datapath.Service{Frontend: empty, Proto: datapath.ProtoTCP, Type: datapath.ClusterIP})
				if got, err := client.Fetch(ctx, empty); err == nil {
					t.Fatalf("service without backends answered %q", got)
				}
				readFlow(t, flows, func(f datapath.Flow) bool {
					return f.Dropped && f.Reason == datapath.ReasonNoBackend && f.Destination == empty
				})
			})
		})
	}
}

// monotonicNow is CLOCK_MONOTONIC, the clock of datapath.Flow.Time.
func monotonicNow(t *testing.T) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

func upsertOn(t *testing.T, n *datapathtest.Node, s datapath.Service) {
	t.Helper()
	if err := n.DP.UpsertService(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

// fetchUntil fetches addr from p until done accepts the backends seen.
func fetchUntil(t *testing.T, p *datapathtest.Pod, addr netip.AddrPort, done func(map[string]int) bool) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range 100 {
		got, err := p.Fetch(context.Background(), addr)
		if err != nil {
			t.Fatalf("fetch %s from %s: %v", addr, p.Name, err)
		}
		seen[got]++
		if done(seen) {
			return seen
		}
	}
	t.Fatalf("after 100 connections to %s backends seen %v", addr, seen)
	return nil
}

func readFlow(t *testing.T, r *datapath.FlowReader, match func(datapath.Flow) bool) datapath.Flow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		f, err := r.Read(ctx)
		if err != nil {
			t.Fatalf("expected flow not read: %v", err)
		}
		if match(f) {
			return f
		}
	}
}

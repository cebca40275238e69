package bpf

import (
	"strconv"
	"testing"
)

func TestNodePortDNATAndReverseNAT(t *testing.T) {
	for _, proto := range []uint8{protoTCP, protoUDP} {
		t.Run(map[uint8]string{protoTCP: "tcp", protoUDP: "udp"}[proto], func(t *testing.T) {
			f := newFixture(t)
			backend := f.endpoint("10.1.0.2", 2, 1002, 0)
			f.service(1, "192.168.0.2:30080", proto, ServiceTC, "10.1.0.2:8080")
			client, frontend := ap(t, "192.168.0.1:50000"), ap(t, "192.168.0.2:30080")

			in := packet{src: client, dst: frontend, proto: proto, payload: []byte("hello")}.bytes()
			ret, out := f.run(f.objs.FromNetdev, in)
			if ret != tcRedirect {
				t.Fatalf("request verdict = %d, want redirect to the backend", ret)
			}
			got := parse(t, out)
			if got.dst != ap(t, "10.1.0.2:8080") || got.src != client {
				t.Fatalf("request after DNAT %v -> %v, want %v -> 10.1.0.2:8080", got.src, got.dst, client)
			}
			if !got.ipCsumOK || !got.l4CsumOK || got.dstMAC != backend.Mac {
				t.Fatalf("request after DNAT: ip csum ok %v, l4 csum ok %v, dst mac %x", got.ipCsumOK, got.l4CsumOK, got.dstMAC)
			}

			reply := packet{src: ap(t, "10.1.0.2:8080"), dst: client, proto: proto, payload: []byte("world!")}.bytes()
			ret, out = f.run(f.objs.FromContainer, reply)
			if ret == tcShot {
				t.Fatalf("reply dropped: %+v", f.events())
			}
			got = parse(t, out)
			if got.src != frontend || got.dst != client {
				t.Fatalf("reply after reverse NAT %v -> %v, want %v -> %v", got.src, got.dst, frontend, client)
			}
			if !got.ipCsumOK || !got.l4CsumOK {
				t.Fatalf("reply after reverse NAT: ip csum ok %v, l4 csum ok %v", got.ipCsumOK, got.l4CsumOK)
			}
		})
	}
}

func TestNodePortBackendChoice(t *testing.T) {
	f := newFixture(t)
	f.endpoint("10.1.0.2", 2, 1002, 0)
	f.endpoint("10.1.0.3", 3, 1003, 0)
	f.service(1, "192.168.0.2:30080", protoTCP, ServiceTC, "10.1.0.2:80", "10.1.0.3:80")

	backendOf := func(client string) string {
		t.Helper()
		ret, out := f.run(f.objs.FromNetdev, packet{src: ap(t, client), dst: ap(t, "192.168.0.2:30080"), proto: protoTCP}.bytes())
		if ret != tcRedirect {
			t.Fatalf("verdict %d, want redirect", ret)
		}
		return parse(t, out).dst.String()
	}

	seen := map[string]bool{}
	first := backendOf("192.168.0.1:40000")
	for port := 40001; port < 40064; port++ {
		seen[backendOf("192.168.0.1:"+strconv.Itoa(port))] = true
	}
	if len(seen) != 2 {
		t.Fatalf("64 flows used backends %v, want both", seen)
	}
	for range 10 {
		if got := backendOf("192.168.0.1:40000"); got != first {
			t.Fatalf("a flow moved from backend %s to %s", first, got)
		}
	}

	// Remove backend .3: slot 2 goes, count drops to 1; new flows avoid it.
	if err := f.objs.WeftLbSlots.Delete(SlotKey{ServiceId: 1, Slot: 2}); err != nil {
		t.Fatal(err)
	}
	if err := f.objs.WeftLbBackends.Delete(uint32(102)); err != nil {
		t.Fatal(err)
	}
	f.put(f.objs.WeftLbServices, NewServiceKey(ap(t, "192.168.0.2:30080"), protoTCP), ServiceValue{Id: 1, Count: 1, Flags: ServiceTC})
	for port := 41000; port < 41032; port++ {
		if got := backendOf("192.168.0.1:" + strconv.Itoa(port)); got != "10.1.0.2:80" {
			t.Fatalf("new flow chose removed backend %s", got)
		}
	}
}

func TestServiceWithoutBackendDrops(t *testing.T) {
	f := newFixture(t)
	f.service(1, "192.168.0.2:30080", protoTCP, ServiceTC)
	ret, _ := f.run(f.objs.FromNetdev, packet{src: ap(t, "192.168.0.1:40000"), dst: ap(t, "192.168.0.2:30080"), proto: protoTCP}.bytes())
	if ret != tcShot {
		t.Fatalf("verdict %d, want drop", ret)
	}
	evs := f.events()
	if len(evs) != 1 || evs[0].Reason != ReasonNoBackend || evs[0].ObsPoint != ObsFromNetdev {
		t.Fatalf("events = %+v, want one no-backend drop from the netdev", evs)
	}
}

func TestSessionAffinityKeepsClientOnBackend(t *testing.T) {
	f := newFixture(t)
	f.endpoint("10.1.0.2", 2, 1002, 0)
	f.endpoint("10.1.0.3", 3, 1003, 0)
	f.service(1, "192.168.0.2:30080", protoTCP, ServiceTC|ServiceAffinity, "10.1.0.2:80", "10.1.0.3:80")
	f.put(f.objs.WeftLbServices, NewServiceKey(ap(t, "192.168.0.2:30080"), protoTCP),
		ServiceValue{Id: 1, Count: 2, Flags: ServiceTC | ServiceAffinity, AffinityTimeout: 600})
	var first string
	for port := 40000; port < 40032; port++ {
		_, out := f.run(f.objs.FromNetdev, packet{src: ap(t, "192.168.0.1:"+strconv.Itoa(port)), dst: ap(t, "192.168.0.2:30080"), proto: protoTCP}.bytes())
		got := parse(t, out).dst.String()
		if first == "" {
			first = got
		}
		if got != first {
			t.Fatalf("flow from port %d went to %s, want the affine %s", port, got, first)
		}
	}
}

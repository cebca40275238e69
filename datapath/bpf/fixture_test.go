package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/weftnet/weft/internal/testgate"
)

const (
	tcOK       = 0
	tcShot     = 2
	tcRedirect = 7
)

// fixture is a set of unpinned objects for prog.Run tests.
type fixture struct {
	t    *testing.T
	objs *Objects
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	testgate.Root(t)
	objs, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	return &fixture{t: t, objs: objs}
}

func (f *fixture) put(m *ebpf.Map, k, v any) {
	f.t.Helper()
	if err := m.Put(k, v); err != nil {
		f.t.Fatalf("put %s: %v", m, err)
	}
}

// endpoint registers a local endpoint; mac's last byte is id. Its device
// is lo (ifindex 1), where prog.Run's packets come from.
func (f *fixture) endpoint(ip string, id uint16, identity uint32, flags uint16) EndpointInfo {
	info := EndpointInfo{
		Ifindex:  1,
		Identity: identity,
		Id:       id,
		Flags:    flags,
		Mac:      [6]byte{0x02, 0xaa, 0, 0, 0, byte(id)},
		NodeMac:  [6]byte{0x02, 0xbb, 0, 0, 0, byte(id)},
	}
	f.put(f.objs.WeftEndpoints, NewEndpointKey(mustAddr(f.t, ip)), info)
	f.put(f.objs.WeftIpcache, NewIPCacheKey(netip.PrefixFrom(mustAddr(f.t, ip), 32)), IPCacheValue{Identity: identity})
	return info
}

func (f *fixture) policy(ep uint16, dir uint8, identity uint32, port uint16, proto uint8, verdict uint8) {
	k := PolicyKey{Identity: identity, EndpointId: ep, Dport: Htons(port), Proto: proto, Direction: dir}
	f.put(f.objs.WeftPolicy, k, PolicyValue{Verdict: verdict})
}

// service adds a frontend with backends (slots 1..n).
func (f *fixture) service(id uint32, fe string, proto uint8, flags uint16, backends ...string) {
	f.t.Helper()
	for i, b := range backends {
		be := ap(f.t, b)
		fam, a := Addr16(be.Addr())
		bid := id*100 + uint32(i) + 1
		f.put(f.objs.WeftLbBackends, bid, Backend{Addr: a, Port: Htons(be.Port()), Proto: proto, Family: fam})
		f.put(f.objs.WeftLbSlots, SlotKey{ServiceId: id, Slot: uint32(i + 1)}, bid)
	}
	feAP := ap(f.t, fe)
	fam, a := Addr16(feAP.Addr())
	f.put(f.objs.WeftLbRevnat, id, RevNAT{Addr: a, Port: Htons(feAP.Port()), Family: fam})
	f.put(f.objs.WeftLbServices, NewServiceKey(feAP, proto), ServiceValue{Id: id, Count: uint16(len(backends)), Flags: flags})
}

// run passes frame to prog and returns the verdict and the frame after it.
func (f *fixture) run(prog *ebpf.Program, frame []byte) (uint32, []byte) {
	f.t.Helper()
	opts := &ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256)}
	ret, err := prog.Run(opts)
	if err != nil {
		f.t.Fatalf("run %s: %v", prog, err)
	}
	return ret, opts.DataOut
}

// events drains the flow ring buffer.
func (f *fixture) events() []FlowEvent {
	f.t.Helper()
	rd, err := ringbuf.NewReader(f.objs.WeftFlows)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rd.Close()
	var evs []FlowEvent
	for {
		rd.SetDeadline(time.Now().Add(50 * time.Millisecond))
		rec, err := rd.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return evs
		}
		if err != nil {
			f.t.Fatal(err)
		}
		var ev FlowEvent
		if err := binary.Read(bytes.NewReader(rec.RawSample), binary.LittleEndian, &ev); err != nil {
			f.t.Fatal(err)
		}
		evs = append(evs, ev)
	}
}

func (f *fixture) metric(reason uint32) uint64 {
	f.t.Helper()
	var n uint64
	for _, dir := range []uint32{DirIngress, DirEgress} { // both directions
		var per []Metric
		if err := f.objs.WeftTraffic.Lookup(dir*ReasonMax+reason, &per); err != nil {
			f.t.Fatal(err)
		}
		for _, m := range per {
			n += m.Packets
		}
	}
	return n
}

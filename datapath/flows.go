package datapath

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/weftnet/weft/datapath/bpf"
)

// Reason says why a packet was forwarded or dropped.
type Reason uint8

const (
	ReasonForwarded      Reason = bpf.ReasonForwarded
	ReasonPolicyDenied   Reason = bpf.ReasonPolicyDenied
	ReasonNoBackend      Reason = bpf.ReasonNoBackend
	ReasonInvalidPacket  Reason = bpf.ReasonInvalidPacket
	ReasonUnknownSource  Reason = bpf.ReasonUnknownSource
	ReasonRedirectFailed Reason = bpf.ReasonRedirectFailed
	ReasonNATFailed      Reason = bpf.ReasonNATFailed
	ReasonNoTunnel       Reason = bpf.ReasonNoTunnelEndpoint
	ReasonProxyDown      Reason = bpf.ReasonProxyUnavailable
)

var reasonNames = map[Reason]string{
	ReasonForwarded:      "forwarded",
	ReasonPolicyDenied:   "policy denied",
	ReasonNoBackend:      "no service backend",
	ReasonInvalidPacket:  "invalid packet",
	ReasonUnknownSource:  "unknown source endpoint",
	ReasonRedirectFailed: "redirect failed",
	ReasonNATFailed:      "nat failed",
	ReasonNoTunnel:       "no tunnel endpoint",
	ReasonProxyDown:      "proxy unavailable",
}

func (r Reason) String() string {
	if s, ok := reasonNames[r]; ok {
		return s
	}
	return fmt.Sprintf("reason %d", uint8(r))
}

// Point is where in the datapath a flow was observed.
type Point uint8

var pointNames = map[Point]string{
	bpf.ObsToEndpoint: "to-endpoint", bpf.ObsToOverlay: "to-overlay", bpf.ObsToStack: "to-stack",
	bpf.ObsFromOverlay: "from-overlay", bpf.ObsFromNetdev: "from-netdev", bpf.ObsFromEndpoint: "from-endpoint",
	bpf.ObsSock: "socket", bpf.ObsToNetdev: "to-netdev", bpf.ObsToProxy: "to-proxy",
}

func (p Point) String() string {
	if s, ok := pointNames[p]; ok {
		return s
	}
	return fmt.Sprintf("point %d", uint8(p))
}

// Flow is one forward or drop decision.
type Flow struct {
	// Time is the kernel's monotonic clock (CLOCK_MONOTONIC) of the decision.
	Time                time.Duration
	Source, Destination netip.AddrPort
	Proto               uint8
	SourceIdentity      uint32
	DestinationIdentity uint32
	Dropped             bool
	Reason              Reason
	Point               Point
	Ifindex             uint32
	// TCPFlags is the TCP header's flags byte (FIN 0x01 ... CWR 0x80), 0
	// for other protocols.
	TCPFlags uint8
	// Frontend is the service address the client asked for when the
	// socket load balancer sent the flow to Destination (a backend), with
	// ServiceID the service's datapath id; invalid otherwise.
	Frontend  netip.AddrPort
	ServiceID uint32
}

func (f Flow) String() string {
	verdict := "forwarded"
	if f.Dropped {
		verdict = "dropped"
	}
	return fmt.Sprintf("%s %s -> %s proto %d (identity %d -> %d) %s: %s", f.Point, f.Source, f.Destination,
		f.Proto, f.SourceIdentity, f.DestinationIdentity, verdict, f.Reason)
}

// FlowReader reads the node's flow events. One reader per node: events go
// to whichever reader consumes them first.
type FlowReader struct {
	rd *ringbuf.Reader
}

// Flows opens a reader of the flow ring buffer.
func (d *Datapath) Flows() (*FlowReader, error) {
	rd, err := ringbuf.NewReader(d.objs.WeftFlows)
	if err != nil {
		return nil, fmt.Errorf("open flow ring buffer: %w", err)
	}
	return &FlowReader{rd: rd}, nil
}

// Read returns the next flow, waiting until ctx ends.
func (r *FlowReader) Read(ctx context.Context) (Flow, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Flow{}, err
		}
		r.rd.SetDeadline(time.Now().Add(100 * time.Millisecond))
		rec, err := r.rd.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			return Flow{}, fmt.Errorf("read flow: %w", err)
		}
		var ev bpf.FlowEvent
		if err := binary.Read(bytes.NewReader(rec.RawSample), binary.LittleEndian, &ev); err != nil {
			return Flow{}, fmt.Errorf("decode flow: %w", err)
		}
		return flowOf(ev), nil
	}
}

// Close stops the reader.
func (r *FlowReader) Close() error { return r.rd.Close() }

func flowOf(ev bpf.FlowEvent) Flow {
	return Flow{
		Time:                time.Duration(ev.Time),
		Source:              netip.AddrPortFrom(bpf.AddrFrom16(ev.Family, ev.Saddr), bpf.Htons(ev.Sport)),
		Destination:         netip.AddrPortFrom(bpf.AddrFrom16(ev.Family, ev.Daddr), bpf.Htons(ev.Dport)),
		Proto:               ev.Proto,
		SourceIdentity:      ev.SrcIdentity,
		DestinationIdentity: ev.DstIdentity,
		Dropped:             ev.Verdict == bpf.FlowDropped,
		Reason:              Reason(ev.Reason),
		Point:               Point(ev.ObsPoint),
		Ifindex:             ev.Ifindex,
		TCPFlags:            ev.TcpFlags,
		Frontend:            frontendOf(ev),
		ServiceID:           ev.ServiceId,
	}
}

func frontendOf(ev bpf.FlowEvent) netip.AddrPort {
	if ev.ServiceId == 0 {
		return netip.AddrPort{}
	}
	var a [4]byte
	binary.NativeEndian.PutUint32(a[:], ev.Frontend)
	return netip.AddrPortFrom(netip.AddrFrom4(a), bpf.Htons(ev.FrontendPort))
}

// Counter is a packet and byte count.
type Counter struct {
	Packets, Bytes uint64
}

// String names a direction as metrics label it.
func (d Direction) String() string {
	if d == Ingress {
		return "ingress"
	}
	return "egress"
}

// TrafficKey is one counter: a decision's reason and direction (ingress
// towards the node's endpoint: to-endpoint, from-overlay, from-netdev).
type TrafficKey struct {
	Reason    Reason
	Direction Direction
}

// Traffic returns the node's counters by reason and direction, summed
// over CPUs; counters at 0 are left out.
func (d *Datapath) Traffic(ctx context.Context) (map[TrafficKey]Counter, error) {
	return ReadTraffic(d.objs)
}

// ReadTraffic reads the counters of a node's maps.
func ReadTraffic(objs *bpf.Objects) (map[TrafficKey]Counter, error) {
	out := map[TrafficKey]Counter{}
	for _, dir := range []Direction{Ingress, Egress} {
		for r := uint32(0); r < bpf.ReasonMax; r++ {
			var per []bpf.Metric
			if err := objs.WeftTraffic.Lookup(uint32(dir)*bpf.ReasonMax+r, &per); err != nil {
				return nil, fmt.Errorf("read counter of %s %s: %w", Reason(r), dir, err)
			}
			var c Counter
			for _, m := range per {
				c.Packets += m.Packets
				c.Bytes += m.Bytes
			}
			if c.Packets > 0 {
				out[TrafficKey{Reason(r), dir}] = c
			}
		}
	}
	return out, nil
}

// Metrics returns the node's counters by reason (both directions),
// summed over CPUs.
func (d *Datapath) Metrics(ctx context.Context) (map[Reason]Counter, error) {
	traffic, err := d.Traffic(ctx)
	if err != nil {
		return nil, err
	}
	out := map[Reason]Counter{}
	for k, c := range traffic {
		sum := out[k.Reason]
		sum.Packets += c.Packets
		sum.Bytes += c.Bytes
		out[k.Reason] = sum
	}
	return out, nil
}

// Objects exposes the loaded programs and maps, for benchmarks and tools
// (BPF run-time statistics, bpftool-like dumps).
func (d *Datapath) Objects() *bpf.Objects { return d.objs }

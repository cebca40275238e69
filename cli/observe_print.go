package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/flow"
)

// flowPrinter writes flows in one of the observe formats; notes (lost
// flows, unreachable nodes) go to errw so that out holds flows only.
type flowPrinter struct {
	out, errw io.Writer
	format    string
	color     bool
	nodeName  bool
	loc       *time.Location
	printed   int
}

func newFlowPrinter(out, errw io.Writer, format string, color, nodeName bool) *flowPrinter {
	return &flowPrinter{out: out, errw: errw, format: format, color: color, nodeName: nodeName, loc: time.Local}
}

// ANSI colours, used on a terminal only.
const (
	ansiRed, ansiGreen, ansiYellow, ansiCyan, ansiReset = "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[36m", "\x1b[0m"
)

func (p *flowPrinter) paint(colour, s string) string {
	if !p.color || s == "" {
		return s
	}
	return colour + s + ansiReset
}

func (p *flowPrinter) print(resp *agentapi.GetFlowsResponse) error {
	if p.format == "jsonpb" && resp.GetFlow() != nil {
		return p.writeJSON(resp, protojson.MarshalOptions{})
	}
	switch {
	case resp.GetLost() != nil:
		l := resp.GetLost()
		_, err := fmt.Fprintf(p.errw, "%s\n", p.paint(ansiYellow,
			fmt.Sprintf("lost %d flows of node %s (%s)", l.GetCount(), orDash(l.GetNode()), l.GetCause())))
		return err
	case resp.GetNodeStatus() != nil:
		n := resp.GetNodeStatus()
		state := "connected"
		if !n.GetConnected() {
			state = "unreachable: " + n.GetError()
		}
		_, err := fmt.Fprintf(p.errw, "node %s (%s) %s\n", n.GetNode(), n.GetAddress(), state)
		return err
	case resp.GetFlow() == nil:
		return nil
	}
	f := resp.GetFlow()
	defer func() { p.printed++ }()
	switch p.format {
	case "json":
		return p.writeJSON(f, protojson.MarshalOptions{UseProtoNames: true})
	case "dict":
		return p.dict(f)
	}
	_, err := fmt.Fprintln(p.out, p.compact(f))
	return err
}

func (p *flowPrinter) flush() error { return nil }

// writeJSON writes m on one line (protojson varies its spacing on purpose:
// compact it for a stable form).
func (p *flowPrinter) writeJSON(m proto.Message, opts protojson.MarshalOptions) error {
	raw, err := opts.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode flow as JSON: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return fmt.Errorf("compact flow JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err = p.out.Write(buf.Bytes())
	return err
}

func (p *flowPrinter) timestamp(f *agentapi.Flow) string {
	return time.Unix(0, f.GetTimeNs()).In(p.loc).Format(time.StampMilli)
}

// compact is hubble's one-line form:
// "Dec 18 14:07:37.200: dev/client-1:44805 -> dev/nginx-dev:80 to-endpoint FORWARDED (TCP Flags: SYN)".
func (p *flowPrinter) compact(f *agentapi.Flow) string {
	var b strings.Builder
	b.WriteString(p.timestamp(f))
	if p.nodeName {
		fmt.Fprintf(&b, " [%s]", f.GetNode())
	}
	src, dst := endpointString(f.GetSource(), hasPorts(f)), endpointString(f.GetDestination(), hasPorts(f))
	fmt.Fprintf(&b, ": %s -> %s", p.paint(ansiCyan, src), p.paint(ansiCyan, dst))
	if svc := serviceString(f.GetDestinationService()); svc != "" {
		fmt.Fprintf(&b, " (service %s)", svc)
	}
	point := f.GetObservationPoint()
	if t := flow.L7Type(f); t != "" {
		point = t
	}
	fmt.Fprintf(&b, " %s %s", point, p.verdict(f))
	if f.GetVerdict() == agentapi.Verdict_DROPPED && f.GetDropReason() != "" {
		b.WriteString(" " + p.paint(ansiRed, f.GetDropReason()))
	}
	if s := summary(f); s != "" {
		fmt.Fprintf(&b, " (%s)", s)
	}
	return b.String()
}

func (p *flowPrinter) verdict(f *agentapi.Flow) string {
	v := f.GetVerdict().String()
	switch f.GetVerdict() {
	case agentapi.Verdict_FORWARDED:
		return p.paint(ansiGreen, v)
	case agentapi.Verdict_DROPPED:
		return p.paint(ansiRed, v)
	}
	return p.paint(ansiYellow, v)
}

func (p *flowPrinter) dict(f *agentapi.Flow) error {
	if p.printed > 0 {
		if _, err := fmt.Fprintln(p.out, "------------"); err != nil {
			return err
		}
	}
	var rows [][2]string
	add := func(k, v string) {
		if v != "" {
			rows = append(rows, [2]string{k, v})
		}
	}
	add("TIMESTAMP", p.timestamp(f))
	add("NODE", f.GetNode())
	add("SOURCE", endpointDetail(f.GetSource(), hasPorts(f)))
	add("DESTINATION", endpointDetail(f.GetDestination(), hasPorts(f)))
	add("SERVICE", serviceString(f.GetDestinationService()))
	add("TYPE", f.GetObservationPoint())
	add("L7", flow.L7Type(f))
	add("DIRECTION", strings.ToLower(strings.TrimPrefix(f.GetDirection().String(), "DIRECTION_")))
	add("VERDICT", p.verdict(f))
	add("DROP REASON", f.GetDropReason())
	add("POLICY", f.GetPolicy())
	add("SUMMARY", summary(f))
	for _, r := range rows {
		if _, err := fmt.Fprintf(p.out, "%11s: %s\n", r[0], r[1]); err != nil {
			return err
		}
	}
	return nil
}

// endpointString is "namespace/pod:port" for a pod, "ip:port" otherwise,
// followed by the pod's global address when the flow crossed the mesh
// under it ("(global 242.1.0.5)") or a reserved identity's name ("(world)").
func endpointString(ep *agentapi.FlowEndpoint, ports bool) string {
	host := ep.GetIp()
	if ep.GetPodName() != "" {
		host = podName(ep.GetNamespace(), ep.GetPodName())
	}
	s := host
	if ports && ep.GetPort() != 0 {
		if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
			s = netip.AddrPortFrom(a, uint16(ep.GetPort())).String()
		} else {
			s = host + ":" + strconv.Itoa(int(ep.GetPort()))
		}
	}
	if s == "" {
		s = "?"
	}
	if g := ep.GetGlobalIp(); g != "" {
		s += " (global " + g + ")" // crossed the mesh under its global address
	}
	for _, l := range ep.GetLabels() {
		if name, ok := strings.CutPrefix(l, "reserved:"); ok && ep.GetPodName() == "" {
			name, _, _ = strings.Cut(name, "=")
			return s + " (" + name + ")"
		}
	}
	return s
}

// hasPorts: ICMP carries an echo id where ports would be; not shown.
func hasPorts(f *agentapi.Flow) bool {
	n := f.GetProtocolNumber()
	return n != flow.ProtoICMP && n != flow.ProtoICMPv6
}

func endpointDetail(ep *agentapi.FlowEndpoint, ports bool) string {
	s := endpointString(ep, ports)
	if ep.GetIdentity() != 0 {
		s += " (identity " + strconv.FormatUint(uint64(ep.GetIdentity()), 10) + ")"
	}
	if ep.GetPodName() != "" && ep.GetIp() != "" {
		s += " " + ep.GetIp()
	}
	return s
}

func serviceString(svc *agentapi.FlowService) string {
	if svc == nil {
		return ""
	}
	s := podName(svc.GetNamespace(), svc.GetName())
	if svc.GetFrontend() != "" {
		s += " " + svc.GetFrontend()
	}
	return s
}

// summary is the L7 request or response, else the protocol and, for TCP,
// the flags.
func summary(f *agentapi.Flow) string {
	if s := flow.L7Summary(f); s != "" {
		return s
	}
	if f.GetProtocolNumber() == flow.ProtoTCP && f.GetTcpFlags() != 0 {
		return "TCP Flags: " + flow.TCPFlagsString(f.GetTcpFlags())
	}
	return f.GetProtocol()
}

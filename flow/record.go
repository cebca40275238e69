package flow

import (
	"strconv"
	"strings"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/datapath"
)

// IP protocol numbers the records name.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
	ProtoSCTP   = 132
)

var protoNames = map[uint8]string{
	ProtoICMP: "ICMP", ProtoTCP: "TCP", ProtoUDP: "UDP", ProtoICMPv6: "ICMPv6", ProtoSCTP: "SCTP",
}

// ProtocolName returns the name of an IP protocol number (TCP, UDP, ...),
// or the number itself.
func ProtocolName(p uint8) string {
	if s, ok := protoNames[p]; ok {
		return s
	}
	return strconv.Itoa(int(p))
}

// TCP header flag bits as tcp_flags holds them.
const (
	TCPFin = 1 << iota
	TCPSyn
	TCPRst
	TCPPsh
	TCPAck
	TCPUrg
	TCPEce
	TCPCwr
)

var tcpFlagNames = []struct {
	bit  uint32
	name string
}{
	{TCPSyn, "SYN"}, {TCPAck, "ACK"}, {TCPFin, "FIN"}, {TCPRst, "RST"},
	{TCPPsh, "PSH"}, {TCPUrg, "URG"}, {TCPEce, "ECE"}, {TCPCwr, "CWR"},
}

// TCPFlagsString names the flags set in bits, e.g. "SYN, ACK"; empty for 0.
func TCPFlagsString(bits uint32) string {
	var names []string
	for _, f := range tcpFlagNames {
		if bits&f.bit != 0 {
			names = append(names, f.name)
		}
	}
	return strings.Join(names, ", ")
}

// DirectionOf says which way a flow goes at an observation point, relative
// to the node's endpoints: towards them (ingress) or away (egress).
func DirectionOf(point string) agentapi.Direction {
	switch point {
	case "to-endpoint", "from-overlay", "from-netdev":
		return agentapi.Direction_INGRESS
	case "from-endpoint", "to-overlay", "to-stack", "to-netdev", "socket":
		return agentapi.Direction_EGRESS
	}
	return agentapi.Direction_DIRECTION_UNKNOWN
}

// Verdicts accepted by filters, in the order help texts list them.
func verdictNames() []string { return []string{"FORWARDED", "DROPPED", "REDIRECTED"} }

// Points are the observation points a record can name.
func Points() []string {
	return []string{"from-endpoint", "to-endpoint", "to-overlay", "from-overlay", "to-stack", "from-netdev", "to-netdev", "socket", "to-proxy", PointL7Proxy}
}

// DropReasons are the drop reasons a record can name (the datapath's).
func DropReasons() []string {
	var out []string
	for r := datapath.Reason(1); r < 16; r++ {
		if s := r.String(); !strings.HasPrefix(s, "reason ") {
			out = append(out, s)
		}
	}
	return out
}

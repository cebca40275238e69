package flow

import (
	"net/netip"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
)

// TestDNSRecords: the DNS proxy's records read as hubble prints them, and
// an answer goes from the server to the client.
func TestDNSRecords(t *testing.T) {
	client, server := netip.MustParseAddrPort("10.0.0.2:40120"), netip.MustParseAddrPort("10.0.1.9:53")
	for _, tc := range []struct {
		typ        agentapi.L7FlowType
		verdict    agentapi.Verdict
		dns        *agentapi.FlowDNS
		kind, want string
	}{
		{agentapi.L7FlowType_REQUEST, agentapi.Verdict_FORWARDED, &agentapi.FlowDNS{Query: "api.example.", Qtypes: []string{"A"}},
			"dns-request", "DNS Query api.example. A"},
		{agentapi.L7FlowType_RESPONSE, agentapi.Verdict_FORWARDED, &agentapi.FlowDNS{Query: "api.example.", Qtypes: []string{"A"}, Ips: []string{"192.0.2.1", "192.0.2.2"}, Ttl: 60, Rcode: "NOERROR"},
			"dns-response", `DNS Answer "192.0.2.1,192.0.2.2" TTL: 60 (Proxy api.example. A)`},
		{agentapi.L7FlowType_RESPONSE, agentapi.Verdict_FORWARDED, &agentapi.FlowDNS{Query: "nope.example.", Qtypes: []string{"A"}, Rcode: "NXDOMAIN"},
			"dns-response", "DNS Answer RCode: NXDOMAIN (Proxy nope.example. A)"},
	} {
		f := DNSRecord(tc.typ, tc.verdict, "", client, server, tc.dns, time.Millisecond, nil)
		if got := L7Type(f); got != tc.kind {
			t.Errorf("%v: type %q, want %q", tc.dns, got, tc.kind)
		}
		if got := L7Summary(f); got != tc.want {
			t.Errorf("%v: summary %q, want %q", tc.dns, got, tc.want)
		}
		src, dst := f.GetSource().GetIp(), f.GetDestination().GetIp()
		if tc.typ == agentapi.L7FlowType_RESPONSE && (src != "10.0.1.9" || dst != "10.0.0.2") ||
			tc.typ == agentapi.L7FlowType_REQUEST && (src != "10.0.0.2" || dst != "10.0.1.9") {
			t.Errorf("%v: %s -> %s", tc.dns, src, dst)
		}
		if f.GetObservationPoint() != PointL7Proxy || f.GetProtocol() != "UDP" || f.GetDirection() != agentapi.Direction_EGRESS {
			t.Errorf("%v: point %s protocol %s direction %v", tc.dns, f.GetObservationPoint(), f.GetProtocol(), f.GetDirection())
		}
	}
}

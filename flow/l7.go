package flow

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/weftnet/weft/api/agentapi"
)

// PointL7Proxy is the observation point of the L7 proxy's records.
const PointL7Proxy = "l7-proxy"

// L7Type names the L7 part of f as weft observe prints it in place of the
// observation point ("http-request", "http-response"); empty when f has
// none.
func L7Type(f *agentapi.Flow) string {
	l7 := f.GetL7()
	if l7 == nil {
		return ""
	}
	kind := "l7"
	switch {
	case l7.GetHttp() != nil:
		kind = "http"
	case l7.GetDns() != nil:
		kind = "dns"
	}
	switch l7.GetType() {
	case agentapi.L7FlowType_REQUEST:
		return kind + "-request"
	case agentapi.L7FlowType_RESPONSE:
		return kind + "-response"
	}
	return kind
}

// L7Summary describes the L7 part of f as hubble does:
// "HTTP/1.1 GET http://echo:8080/" for a request,
// "HTTP/1.1 200 12ms (GET http://echo:8080/)" for a response.
func L7Summary(f *agentapi.Flow) string {
	if d := f.GetL7().GetDns(); d != nil {
		return dnsSummary(f.GetL7().GetType(), d)
	}
	h := f.GetL7().GetHttp()
	if h == nil {
		return ""
	}
	req := strings.TrimSpace(h.GetMethod() + " " + h.GetUrl())
	var s string
	if f.GetL7().GetType() == agentapi.L7FlowType_RESPONSE {
		latency := time.Duration(f.GetL7().GetLatencyNs())
		s = h.GetProtocol() + " " + strconv.Itoa(int(h.GetCode())) + " " + strconv.FormatInt(latency.Milliseconds(), 10) + "ms"
		if req != "" {
			s += " (" + req + ")"
		}
	} else {
		s = h.GetProtocol() + " " + req
	}
	if m := h.GetHeaderMismatches(); len(m) > 0 {
		s += " [header mismatch: " + strings.Join(m, ", ") + "]"
	}
	return strings.TrimSpace(s)
}

// dnsSummary describes a DNS record as hubble does:
// "DNS Query api.example. A" for a query,
// `DNS Answer "192.0.2.1" TTL: 60 (Proxy api.example. A)` for an answer,
// "DNS Answer RCode: REFUSED (Proxy other.example. A)" for one without
// addresses.
func dnsSummary(typ agentapi.L7FlowType, d *agentapi.FlowDNS) string {
	q := strings.TrimSpace(d.GetQuery() + " " + strings.Join(d.GetQtypes(), ","))
	if typ != agentapi.L7FlowType_RESPONSE {
		return "DNS Query " + q
	}
	if len(d.GetIps()) == 0 || d.GetRcode() != "NOERROR" {
		return "DNS Answer RCode: " + d.GetRcode() + " (Proxy " + q + ")"
	}
	return "DNS Answer \"" + strings.Join(d.GetIps(), ",") + "\" TTL: " + strconv.Itoa(int(d.GetTtl())) + " (Proxy " + q + ")"
}

// DNSRecord is the flow record of a DNS query (typ REQUEST) or answer
// (RESPONSE) of the DNS proxy, from the endpoint to its DNS server (an
// answer the other way). Enricher, when given, names the ends.
func DNSRecord(typ agentapi.L7FlowType, verdict agentapi.Verdict, reason string, src, server netip.AddrPort,
	dns *agentapi.FlowDNS, latency time.Duration, e *Enricher) *agentapi.Flow {
	if typ == agentapi.L7FlowType_RESPONSE {
		src, server = server, src
	}
	f := &agentapi.Flow{
		TimeNs:           time.Now().UnixNano(),
		ObservationPoint: PointL7Proxy,
		Verdict:          verdict,
		DropReason:       reason,
		Protocol:         ProtocolName(ProtoUDP),
		ProtocolNumber:   ProtoUDP,
		Direction:        agentapi.Direction_EGRESS,
		L7:               &agentapi.FlowL7{Type: typ, LatencyNs: uint64(latency), Dns: dns},
	}
	e.SetEnds(f, src, server)
	return f
}

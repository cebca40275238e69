package flow

import (
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
	if l7.GetHttp() != nil {
		kind = "http"
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

package httpproxy

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/flow"
)

// httpInfo is what a record tells of a request.
type httpInfo struct {
	Method, URL, Protocol string
}

func (cc *clientConn) info(req *http.Request) httpInfo {
	host := req.Host
	if host == "" {
		host = cc.dst.String()
	}
	return httpInfo{Method: req.Method, URL: "http://" + host + req.URL.RequestURI(), Protocol: req.Proto}
}

// record writes one L7 record: a request goes from the client to the
// original destination, a response the other way.
func (p *Proxy) record(cc *clientConn, typ agentapi.L7FlowType, verdict agentapi.Verdict, reason string, info httpInfo, code uint32, latency time.Duration, mismatches []string) {
	if p.cfg.Flows == nil {
		return
	}
	src, dst := cc.src, cc.dst
	if typ == agentapi.L7FlowType_RESPONSE {
		src, dst = dst, src
	}
	f := &agentapi.Flow{
		TimeNs:           time.Now().UnixNano(),
		ObservationPoint: flow.PointL7Proxy,
		Verdict:          verdict,
		DropReason:       reason,
		Protocol:         flow.ProtocolName(flow.ProtoTCP),
		ProtocolNumber:   flow.ProtoTCP,
		Direction:        p.cfg.Direction,
		L7: &agentapi.FlowL7{Type: typ, LatencyNs: uint64(latency), Http: &agentapi.FlowHTTP{
			Code: code, Method: info.Method, Url: info.URL, Protocol: info.Protocol, HeaderMismatches: mismatches,
		}},
	}
	p.cfg.Enricher.SetEnds(f, src, dst)
	p.cfg.Flows.Write(f)
}

// Verdicts of the request metrics.
const (
	verdictForwarded = "forwarded"
	verdictDenied    = "denied"
	verdictMalformed = "malformed"
)

// Metrics are the proxy's Prometheus metrics, shared by a node's
// listeners.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics registers the proxy metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "weft", Subsystem: "proxy", Name: "http_requests_total",
			Help: "HTTP requests the L7 proxy answered, by method, status code and verdict (forwarded, denied, malformed).",
		}, []string{"method", "code", "verdict"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "weft", Subsystem: "proxy", Name: "http_request_duration_seconds",
			Help:    "Time from reading a request's header to having its response's header, by verdict.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"verdict"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// methods are the method label's values; others count as OTHER, so a
// client cannot grow the label set.
var methods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

func (m *Metrics) observe(method string, code int, verdict string, latency time.Duration) {
	if m == nil {
		return
	}
	label := "OTHER"
	for _, x := range methods {
		if strings.EqualFold(method, x) {
			label = x
		}
	}
	if method == "" {
		label = ""
	}
	m.requests.WithLabelValues(label, strconv.Itoa(code), verdict).Inc()
	m.latency.WithLabelValues(verdict).Observe(latency.Seconds())
}

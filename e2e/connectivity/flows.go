package connectivity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/weftnet/weft/api/agentapi"
)

// Flow validation modes (--flow-validation), as cilium-cli names them.
const (
	FlowValidationDisabled = "disabled"
	FlowValidationWarning  = "warning" // a missing flow is printed, the scenario passes
	FlowValidationStrict   = "strict"  // a missing flow fails the scenario
)

// ParseFlowValidation checks a --flow-validation value.
func ParseFlowValidation(v string) (string, error) {
	switch v {
	case FlowValidationDisabled, FlowValidationWarning, FlowValidationStrict:
		return v, nil
	}
	return "", fmt.Errorf("--flow-validation %q: accepted are %s, %s and %s", v, FlowValidationDisabled, FlowValidationWarning, FlowValidationStrict)
}

// expectedFlow is what a scenario states the datapath must have recorded:
// a flow from src to dst's echo port with this verdict (and drop reason),
// seen by the node of either end. With a method it is the L7 proxy's
// record of that HTTP request (http-request) instead.
type expectedFlow struct {
	src, dst endpoint
	port     uint32
	verdict  agentapi.Verdict
	reason   string // for DROPPED
	// method and path of an http-request record; empty for the
	// datapath's records.
	method, path string
}

func (e expectedFlow) String() string {
	s := fmt.Sprintf("a %s flow %s -> %s:%d", e.verdict, e.src.ip, e.dst.ip, e.port)
	if e.method != "" {
		s = fmt.Sprintf("a %s http-request %s -> %s:%d (%s %s)", e.verdict, e.src.ip, e.dst.ip, e.port, e.method, e.path)
	}
	if e.reason != "" {
		s += " (" + e.reason + ")"
	}
	return s
}

// matches reports whether f is the record e describes.
func (e expectedFlow) matches(f *agentapi.Flow) bool {
	if f.GetVerdict() != e.verdict || (e.reason != "" && f.GetDropReason() != e.reason) {
		return false
	}
	if e.method == "" {
		// A forward recorded where a flow enters a node (from-endpoint,
		// from-overlay, from-netdev) precedes the policy decision at
		// the other end: only a forward where it is sent on proves it
		// was allowed.
		entry := strings.HasPrefix(f.GetObservationPoint(), "from-")
		return f.GetL7() == nil && (e.verdict != agentapi.Verdict_FORWARDED || !entry)
	}
	l7 := f.GetL7()
	if l7.GetType() != agentapi.L7FlowType_REQUEST || l7.GetHttp().GetMethod() != e.method {
		return false
	}
	u, err := url.Parse(l7.GetHttp().GetUrl())
	return err == nil && u.RequestURI() == e.path
}

// validateFlows checks, when flow validation is on, that the flow the
// scenario caused since start is in the observing nodes' flow records.
// In warning mode a missing flow is printed and nil returned.
func (fx *fixture) validateFlows(ctx context.Context, start time.Time, want expectedFlow) error {
	if fx.opts.FlowValidation == "" || fx.opts.FlowValidation == FlowValidationDisabled {
		return nil
	}
	var (
		seen []string
		err  error
	)
	deadline := time.Now().Add(3 * time.Second) // events reach the rings asynchronously
	for {
		var ok bool
		if ok, seen, err = fx.findFlow(ctx, start, want); ok {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	where := "node " + want.src.node
	if want.dst.node != "" && want.src.node != want.dst.node {
		where = fmt.Sprintf("node %s or %s", want.src.node, want.dst.node)
	}
	msg := fmt.Sprintf("flow validation: expected %s on %s, none was recorded", want, where)
	if len(seen) > 0 {
		msg += "; recorded between them: " + strings.Join(seen, "; ")
	}
	if err != nil {
		msg += fmt.Sprintf(" (reading flows: %v)", err)
	}
	if fx.opts.FlowValidation == FlowValidationWarning {
		fmt.Fprintf(fx.opts.Progress, "  ⚠ %s\n", msg)
		return nil
	}
	return errors.New(msg)
}

// findFlow reads the flows between want's ends since start on both ends'
// nodes and reports whether one matches; seen summarises the others.
func (fx *fixture) findFlow(ctx context.Context, start time.Time, want expectedFlow) (bool, []string, error) {
	var seen []string
	var errs []error
	var nodes []string
	for _, n := range []string{want.dst.node, want.src.node} {
		if n != "" && !slices.Contains(nodes, n) { // the outside server has no node
			nodes = append(nodes, n)
		}
	}
	for _, node := range nodes {
		// Each end's node names its own pod by its pod address and the
		// other end as it sees it (by a global address across clusters).
		self := endpoint{node: node}
		srcIP, dstIP := fx.addrFor(self, want.src).String(), fx.addrFor(self, want.dst).String()
		n, err := fx.node(node)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		obs, closeFn, err := agentapi.DialObserver(ctx, n.socket)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		stream, err := obs.GetFlows(rctx, &agentapi.GetFlowsRequest{SinceNs: start.UnixNano(),
			Whitelist: []*agentapi.FlowFilter{{Ip: []string{dstIP}, Port: []uint32{want.port}}}})
		for err == nil {
			var resp *agentapi.GetFlowsResponse
			if resp, err = stream.Recv(); err != nil {
				break
			}
			f := resp.GetFlow()
			if f == nil || f.GetSource().GetIp() != srcIP || f.GetDestination().GetIp() != dstIP {
				continue
			}
			if want.matches(f) {
				cancel()
				closeFn()
				return true, nil, nil
			}
			rec := fmt.Sprintf("%s %s at %s on %s", f.GetVerdict(), f.GetDropReason(), f.GetObservationPoint(), f.GetNode())
			if h := f.GetL7().GetHttp(); h != nil {
				rec = fmt.Sprintf("%s %s %s %d %s at %s on %s", f.GetVerdict(), h.GetMethod(), h.GetUrl(), h.GetCode(), f.GetDropReason(), f.GetObservationPoint(), f.GetNode())
			}
			seen = append(seen, rec)
		}
		cancel()
		closeFn()
		if !errors.Is(err, io.EOF) {
			errs = append(errs, err)
		}
	}
	return false, seen, errors.Join(errs...)
}

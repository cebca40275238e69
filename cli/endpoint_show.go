package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/weftnet/weft/api/agentapi"
)

// writeEndpoint is the human form of `weft endpoint get`: the endpoint's
// fields, then the rules of its effective policy.
func writeEndpoint(w io.Writer, ep *agentapi.Endpoint) error {
	var f fields
	f.add("ID", itoa(ep.GetId()))
	f.add("Pod", orDash(podName(ep.GetNamespace(), ep.GetPodName())))
	f.add("Container", orDash(ep.GetContainerId()))
	f.add("Node", orDash(ep.GetNode()))
	f.add("State", orDash(ep.GetState()))
	f.add("Interface", fmt.Sprintf("%s (host side %s)", orDash(ep.GetIfname()), orDash(ep.GetHostIfname())))
	f.add("Netns", orDash(ep.GetNetns()))
	f.add("IPv4", orDash(ep.GetIpv4()))
	if g := ep.GetGlobalIpv4(); g != "" {
		f.add("Global IPv4", g)
	}
	f.add("Gateway", fmt.Sprintf("%s (MAC %s)", orDash(ep.GetGatewayIpv4()), orDash(ep.GetGatewayMac())))
	f.add("MTU", itoa(ep.GetMtu()))
	var routes []string
	for _, r := range ep.GetRoutes() {
		if r.GetGw() == "" {
			routes = append(routes, r.GetDst()+" on-link")
		} else {
			routes = append(routes, r.GetDst()+" via "+r.GetGw())
		}
	}
	f.add("Routes", orDash(strings.Join(routes, "\n")))
	f.add("Identity", itoa(ep.GetIdentity()))
	f.add("Labels", orDash(strings.Join(ep.GetLabels(), "\n")))
	p := ep.GetPolicy()
	if p == nil {
		f.add("Policy", "none: no policy selects this endpoint, all traffic is allowed")
		return f.write(w)
	}
	f.add("Policy", fmt.Sprintf("ingress %s, egress %s; %d rules",
		enforcementWord(p.GetIngressEnforced()), enforcementWord(p.GetEgressEnforced()), len(p.GetRules())))
	if err := f.write(w); err != nil {
		return err
	}
	if len(p.GetRules()) == 0 {
		return nil
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	return policyTable(p).write(w)
}

func enforcementWord(on bool) string {
	if on {
		return "enforced"
	}
	return "not enforced"
}

func policyTable(p *agentapi.EndpointPolicy) *table {
	t := newTable("Direction", "Verdict", "Identity", "Port", "Protocol", "Labels")
	for _, r := range p.GetRules() {
		verdict := "allow"
		if r.GetDeny() {
			verdict = "deny"
		}
		id := "any"
		if r.GetIdentity() != 0 {
			id = itoa(r.GetIdentity())
		}
		t.add(r.GetDirection(), verdict, id, portRange(r.GetPort(), r.GetEndPort()), orDash(r.GetProtocol()),
			strings.Join(r.GetLabels(), "\n"))
	}
	return t
}

func portRange(port, end uint32) string {
	switch {
	case port == 0:
		return "any"
	case end > port:
		return fmt.Sprintf("%d-%d", port, end)
	}
	return itoa(port)
}

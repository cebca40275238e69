package connectivity

import (
	"testing"

	"github.com/weftnet/weft/api/agentapi"
)

// TestExpectedFlowMatches: a datapath expectation is met only by the
// datapath's records (a forward not where a flow enters a node), an L7
// one only by the proxy's http-request record of that method and target.
func TestExpectedFlowMatches(t *testing.T) {
	httpRec := func(verdict agentapi.Verdict, reason, method, url string) *agentapi.Flow {
		return &agentapi.Flow{Verdict: verdict, DropReason: reason, ObservationPoint: "l7-proxy",
			L7: &agentapi.FlowL7{Type: agentapi.L7FlowType_REQUEST, Http: &agentapi.FlowHTTP{Method: method, Url: url}}}
	}
	fwd := agentapi.Verdict_FORWARDED
	drop := agentapi.Verdict_DROPPED
	get := expectedFlow{verdict: fwd, method: "GET", path: "/"}
	denied := expectedFlow{verdict: drop, reason: "policy denied", method: "GET", path: "/private"}
	l3 := expectedFlow{verdict: drop, reason: "policy denied"}
	for _, tc := range []struct {
		name string
		want expectedFlow
		f    *agentapi.Flow
		ok   bool
	}{
		{"forwarded request", get, httpRec(fwd, "", "GET", "http://10.0.0.2:8080/"), true},
		{"other method", get, httpRec(fwd, "", "POST", "http://10.0.0.2:8080/"), false},
		{"other path", get, httpRec(fwd, "", "GET", "http://10.0.0.2:8080/private"), false},
		{"query is part of the target", get, httpRec(fwd, "", "GET", "http://10.0.0.2:8080/?x=1"), false},
		{"response record", get, &agentapi.Flow{Verdict: fwd, L7: &agentapi.FlowL7{Type: agentapi.L7FlowType_RESPONSE, Http: &agentapi.FlowHTTP{Method: "GET", Url: "http://10.0.0.2:8080/"}}}, false},
		{"datapath forward is not a request", get, &agentapi.Flow{Verdict: fwd, ObservationPoint: "to-endpoint"}, false},
		{"denied request", denied, httpRec(drop, "policy denied", "GET", "http://10.0.0.2:8080/private"), true},
		{"denied request, forwarded", denied, httpRec(fwd, "", "GET", "http://10.0.0.2:8080/private"), false},
		{"datapath drop", l3, &agentapi.Flow{Verdict: drop, DropReason: "policy denied", ObservationPoint: "to-endpoint"}, true},
		{"L7 drop is not a datapath drop", l3, httpRec(drop, "policy denied", "GET", "http://10.0.0.2:8080/"), false},
		{"forward at an entry point", expectedFlow{verdict: fwd}, &agentapi.Flow{Verdict: fwd, ObservationPoint: "from-endpoint"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.want.matches(tc.f); got != tc.ok {
				t.Errorf("%s matches %v: %v, want %v", tc.want, tc.f, got, tc.ok)
			}
		})
	}
}

package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
)

// source sends a fixed history, then waits (a following stream).
type source struct {
	flows []*agentapi.Flow
	got   chan *agentapi.GetFlowsRequest
}

func (s source) Stream(ctx context.Context, req *agentapi.GetFlowsRequest, send func(*agentapi.GetFlowsResponse) error) error {
	s.got <- req
	for _, f := range s.flows {
		if err := send(&agentapi.GetFlowsResponse{Response: &agentapi.GetFlowsResponse_Flow{Flow: f}}); err != nil {
			return err
		}
	}
	send(&agentapi.GetFlowsResponse{Response: &agentapi.GetFlowsResponse_NodeStatus{NodeStatus: &agentapi.NodeStatus{Node: "c1-n2", Connected: false}}})
	<-ctx.Done()
	return ctx.Err()
}

func TestBadParameters(t *testing.T) {
	srv := httptest.NewServer(Handler(source{got: make(chan *agentapi.GetFlowsRequest, 1)}, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	for q, want := range map[string]string{
		"last=-1":         `last="-1": accepted is a number of past flows from 0 to 10000`,
		"last=99999":      `last="99999"`,
		"namespace=Dev_1": `namespace="Dev_1": accepted is a lowercase DNS label`,
		"cluster=a/b":     `cluster="a/b"`,
		"verdict=DROPPED": `unknown parameter "verdict": accepted are last, namespace and cluster`,
	} {
		resp, err := http.Get(srv.URL + "/api/flows?" + q)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), want) {
			t.Errorf("?%s: %d %q, want 400 with %q", q, resp.StatusCode, body, want)
		}
	}
}

// TestStreamBatches: flows arrive as one batch with both ends named and
// the filters reach the source; an unreachable node is reported.
func TestStreamBatches(t *testing.T) {
	src := source{got: make(chan *agentapi.GetFlowsRequest, 1), flows: []*agentapi.Flow{{
		TimeNs: 1_700_000_000_000_000_000, Node: "c1-n2", Verdict: agentapi.Verdict_DROPPED, DropReason: "policy denied",
		Source:      &agentapi.FlowEndpoint{Ip: "10.100.0.2", Namespace: "dev", PodName: "client-1", Cluster: "c1"},
		Destination: &agentapi.FlowEndpoint{Ip: "10.100.1.2", Port: 8080, Namespace: "dev", PodName: "web-1", Cluster: "c1"},
		Protocol:    "TCP", ObservationPoint: "to-endpoint",
	}}}
	srv := httptest.NewServer(Handler(src, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/flows?namespace=dev&last=50", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := <-src.got
	if got.GetNumber() != 50 || !got.GetFollow() || len(got.GetWhitelist()) != 1 || got.GetWhitelist()[0].GetNamespace()[0] != "dev" {
		t.Errorf("the source was asked %v", got)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var b batch
		if err := json.Unmarshal([]byte(data), &b); err != nil {
			t.Fatal(err)
		}
		if len(b.Flows) != 1 || b.Flows[0].Src.ID != "dev/client-1" || b.Flows[0].Dst.ID != "dev/web-1" || b.Flows[0].Verdict != "DROPPED" ||
			b.Flows[0].Port != 8080 || len(b.Down) != 1 || b.Down[0] != "c1-n2" {
			t.Errorf("batch %s", data)
		}
		return
	}
	t.Fatalf("no batch: %v", sc.Err())
}

func TestPageServed(t *testing.T) {
	srv := httptest.NewServer(Handler(source{got: make(chan *agentapi.GetFlowsRequest, 1)}, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	for path, want := range map[string]string{"/": `<script src="app.js">`, "/app.js": "new EventSource", "/app.css": ".edge.dropped"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, want %q in it", path, resp.StatusCode, want)
		}
	}
}

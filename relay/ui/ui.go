// Package ui serves the service map: a web page that draws the pods seen
// in flows, grouped by namespace, and the flows between them as edges
// coloured by verdict, live, with a table of the flows below (click an
// edge to show only its flows) and namespace and cluster selectors. It
// reads flows from a FlowSource (a *relay.Relay) and sends them to the
// page as Server-Sent Events in batches, so a busy fabric does not flood
// the browser. The page's assets are embedded: it works offline.
package ui

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/state/records"
)

//go:embed assets
var assets embed.FS

// FlowSource streams flow records (*relay.Relay does).
type FlowSource interface {
	Stream(ctx context.Context, req *agentapi.GetFlowsRequest, send func(*agentapi.GetFlowsResponse) error) error
}

// Limits of one event stream.
const (
	batchEvery   = 300 * time.Millisecond // flows are sent in batches this often
	maxBatch     = 500                    // at most this many flows per batch; the rest are counted
	maxHistory   = 10000                  // ?last= accepts up to this many past flows
	defaultLast  = 1000
	maxNameParam = 63
)

// Handler serves the page at / and its flows at /api/flows.
func Handler(src FlowSource, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /api/flows", func(w http.ResponseWriter, r *http.Request) { serveFlows(w, r, src, log) })
	return mux
}

// edgeFlow is one flow as the page draws it.
type edgeFlow struct {
	Time    int64  `json:"t"` // Unix milliseconds
	Src     side   `json:"src"`
	Dst     side   `json:"dst"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason,omitempty"`
	Proto   string `json:"proto"`
	Port    uint32 `json:"port"`
	Node    string `json:"node"`
	Point   string `json:"point"`
	Service string `json:"service,omitempty"` // namespace/name of a load-balanced destination
}

type side struct {
	ID        string `json:"id"` // the map's node: namespace/pod, or the address
	Namespace string `json:"ns,omitempty"`
	Cluster   string `json:"cluster,omitempty"`
	IP        string `json:"ip"`
}

func sideOf(e *agentapi.FlowEndpoint) side {
	s := side{Namespace: e.GetNamespace(), Cluster: e.GetCluster(), IP: e.GetIp()}
	switch {
	case e.GetPodName() != "":
		s.ID = e.GetNamespace() + "/" + e.GetPodName()
	default:
		s.ID = e.GetIp()
	}
	return s
}

func toEdge(f *agentapi.Flow) edgeFlow {
	e := edgeFlow{Time: f.GetTimeNs() / 1e6, Src: sideOf(f.GetSource()), Dst: sideOf(f.GetDestination()),
		Verdict: f.GetVerdict().String(), Reason: f.GetDropReason(), Proto: f.GetProtocol(),
		Port: f.GetDestination().GetPort(), Node: f.GetNode(), Point: f.GetObservationPoint()}
	if s := f.GetDestinationService(); s != nil {
		e.Service = s.GetNamespace() + "/" + s.GetName()
	}
	return e
}

// batch is one Server-Sent Event: flows, and how many were left out.
type batch struct {
	Flows   []edgeFlow `json:"flows"`
	Dropped int        `json:"dropped,omitempty"` // flows not sent (over maxBatch in one period)
	Down    []string   `json:"down,omitempty"`    // nodes the relay cannot reach
}

// query parses and checks the parameters of /api/flows.
func query(r *http.Request) (*agentapi.GetFlowsRequest, error) {
	q := r.URL.Query()
	req := &agentapi.GetFlowsRequest{Follow: true, Number: defaultLast}
	if v := q.Get("last"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxHistory {
			return nil, fmt.Errorf("last=%q: accepted is a number of past flows from 0 to %d", v, maxHistory)
		}
		req.Number = uint64(n)
	}
	var filter agentapi.FlowFilter
	for _, p := range []struct {
		name string
		to   *[]string
	}{{"namespace", &filter.Namespace}, {"cluster", &filter.Cluster}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		if len(v) > maxNameParam || records.ValidateNamespace(v) != nil {
			return nil, fmt.Errorf("%s=%q: accepted is a lowercase DNS label (a-z, 0-9, '-') of 1 to %d characters", p.name, v, maxNameParam)
		}
		*p.to = []string{v}
	}
	if len(filter.Namespace)+len(filter.Cluster) > 0 {
		req.Whitelist = []*agentapi.FlowFilter{&filter}
	}
	for k := range q {
		if k != "last" && k != "namespace" && k != "cluster" {
			return nil, fmt.Errorf("unknown parameter %q: accepted are last, namespace and cluster", k)
		}
	}
	return req, nil
}

// serveFlows streams batches of flows as Server-Sent Events until the
// page goes away.
func serveFlows(w http.ResponseWriter, r *http.Request, src FlowSource, log *slog.Logger) {
	req, err := query(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported by this connection", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()

	in := make(chan *agentapi.GetFlowsResponse, 4096)
	go func() {
		defer close(in)
		err := src.Stream(ctx, req, func(resp *agentapi.GetFlowsResponse) error {
			select {
			case in <- resp:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil && ctx.Err() == nil {
			log.Warn("service map: flow stream ended", "err", err)
		}
	}()
	tick := time.NewTicker(batchEvery)
	defer tick.Stop()
	var b batch
	down := map[string]bool{}
	send := func() bool {
		for n := range down {
			b.Down = append(b.Down, n)
		}
		if len(b.Flows) == 0 && b.Dropped == 0 && len(b.Down) == 0 {
			return true
		}
		raw, err := json.Marshal(b)
		if err != nil {
			return false
		}
		b = batch{}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", raw); err != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	fmt.Fprint(w, ": weft service map\n\n")
	flusher.Flush()
	for {
		select {
		case resp, ok := <-in:
			if !ok {
				send()
				return
			}
			switch {
			case resp.GetFlow() != nil:
				if len(b.Flows) < maxBatch {
					b.Flows = append(b.Flows, toEdge(resp.GetFlow()))
				} else {
					b.Dropped++
				}
			case resp.GetNodeStatus() != nil:
				ns := resp.GetNodeStatus()
				if ns.GetConnected() {
					delete(down, ns.GetNode())
				} else {
					down[ns.GetNode()] = true
				}
			}
		case <-tick.C:
			if !send() {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

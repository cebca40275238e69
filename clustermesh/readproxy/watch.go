package readproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// watchServer forwards a remote's watch stream to the store, checking
// every watch it creates against the allowed ranges and its limits.
type watchServer struct {
	pb.UnimplementedWatchServer
	p *Proxy
}

func (s *watchServer) Watch(down pb.Watch_WatchServer) error {
	p := s.p
	r := remoteFrom(down.Context())
	ctx, cancel := context.WithCancel(down.Context())
	defer cancel()
	defer p.addStream(r, cancel)()
	conn, err := p.upstream(r)
	if err != nil {
		return err
	}
	up, err := pb.NewWatchClient(conn).Watch(outgoing(ctx))
	if err != nil {
		return err
	}
	w := &watchPump{p: p, r: r, down: down, up: up, ids: map[int64]bool{}}
	defer w.release()
	fromRemote, fromStore := make(chan error, 1), make(chan error, 1)
	go func() { fromRemote <- w.fromRemote() }()
	go func() { fromStore <- w.fromStore() }()
	for {
		select {
		case err := <-fromRemote:
			if err != nil {
				return err
			}
			fromRemote = nil // the remote closed its side; drain the store's
		case err := <-fromStore:
			return err
		case <-ctx.Done():
			return fmt.Errorf("remote %s: watch closed: %w", r.name, context.Cause(ctx))
		}
	}
}

// watchPump is one forwarded watch stream. Creations refused here are
// answered in the order the remote sent them: a refusal waits behind the
// creations already forwarded to the store (etcd clients match creation
// answers to their requests by order).
type watchPump struct {
	p    *Proxy
	r    *remote
	down pb.Watch_WatchServer
	up   pb.Watch_WatchClient

	mu     sync.Mutex          // queue, ids, closed, and sending down
	queue  []*pb.WatchResponse // nil: a creation forwarded to the store
	ids    map[int64]bool      // watches created through this stream
	closed bool                // the stream ended: nothing more is sent or counted
}

func (w *watchPump) fromRemote() error {
	for {
		req, err := w.down.Recv()
		if errors.Is(err, io.EOF) {
			return w.up.CloseSend()
		}
		if err != nil {
			return err
		}
		cr := req.GetCreateRequest()
		if cr == nil {
			// Cancel and progress requests only concern the stream's own watches.
			if err := w.up.Send(req); err != nil {
				return err
			}
			continue
		}
		if reason := w.admitCreate(cr); reason != "" {
			if err := w.refuse(reason); err != nil {
				return err
			}
			continue
		}
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			w.unreserve(1)
			return errors.New("watch stream closed")
		}
		w.queue = append(w.queue, nil)
		w.mu.Unlock()
		if err := w.up.Send(req); err != nil {
			return err
		}
	}
}

// admitCreate reserves a watch for cr, or says why it is refused.
func (w *watchPump) admitCreate(cr *pb.WatchCreateRequest) string {
	p, r := w.p, w.r
	if !p.covered(cr.Key, cr.RangeEnd) {
		p.m.refused.WithLabelValues(r.name, "range").Inc()
		return rpctypes.ErrGRPCPermissionDenied.Error()
	}
	if !r.lim.Allow() {
		p.m.refused.WithLabelValues(r.name, "rate").Inc()
		return fmt.Sprintf("remote cluster %s exceeds its request rate (%v/s, burst %d)", r.name, p.o.Config.RequestRate, p.o.Config.RequestBurst)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.watches >= p.o.Config.MaxWatches {
		p.m.refused.WithLabelValues(r.name, "watches").Inc()
		return fmt.Sprintf("remote cluster %s holds %d watches, the limit", r.name, p.o.Config.MaxWatches)
	}
	r.watches++
	p.m.watches.WithLabelValues(r.name).Set(float64(r.watches))
	return ""
}

// refuse answers a creation the way etcd refuses one: created and
// canceled at once, with the reason.
func (w *watchPump) refuse(reason string) error {
	resp := &pb.WatchResponse{Header: &pb.ResponseHeader{}, WatchId: -1, Created: true, Canceled: true, CancelReason: reason}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("watch stream closed")
	}
	if len(w.queue) > 0 {
		w.queue = append(w.queue, resp)
		return nil
	}
	return w.down.Send(resp)
}

func (w *watchPump) fromStore() error {
	for {
		resp, err := w.up.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := w.forward(resp); err != nil {
			return err
		}
	}
}

// forward sends a store answer down, keeping the watch count and the
// order of creation answers.
func (w *watchPump) forward(resp *pb.WatchResponse) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("watch stream closed")
	}
	switch {
	case resp.Created:
		if len(w.queue) > 0 {
			w.queue = w.queue[1:]
		}
		if resp.Canceled {
			w.unreserve(1)
		} else {
			w.ids[resp.WatchId] = true
		}
	case resp.Canceled && w.ids[resp.WatchId]:
		delete(w.ids, resp.WatchId)
		w.unreserve(1)
	}
	if err := w.down.Send(resp); err != nil {
		return err
	}
	for len(w.queue) > 0 && w.queue[0] != nil {
		if err := w.down.Send(w.queue[0]); err != nil {
			return err
		}
		w.queue = w.queue[1:]
	}
	return nil
}

// release gives back the watches of a finished stream.
func (w *watchPump) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.ids)
	for _, q := range w.queue {
		if q == nil {
			n++
		}
	}
	w.ids, w.queue, w.closed = map[int64]bool{}, nil, true
	w.unreserve(n)
}

func (w *watchPump) unreserve(n int) {
	if n == 0 {
		return
	}
	p, r := w.p, w.r
	p.mu.Lock()
	defer p.mu.Unlock()
	r.watches -= n
	p.m.watches.WithLabelValues(r.name).Set(float64(r.watches))
}

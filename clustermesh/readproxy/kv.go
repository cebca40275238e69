package readproxy

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/metadata"
)

// kvServer forwards Range; the interceptor refuses every other KV call.
type kvServer struct {
	pb.UnimplementedKVServer
	p *Proxy
}

func (s *kvServer) Range(ctx context.Context, req *pb.RangeRequest) (*pb.RangeResponse, error) {
	r := remoteFrom(ctx)
	if !s.p.covered(req.Key, req.RangeEnd) {
		s.p.m.refused.WithLabelValues(r.name, "range").Inc()
		return nil, rpctypes.ErrGRPCPermissionDenied
	}
	conn, err := s.p.upstream(r)
	if err != nil {
		return nil, err
	}
	return pb.NewKVClient(conn).Range(outgoing(ctx), req)
}

// outgoing carries the caller's "require a leader" request to the store;
// no other metadata passes.
func outgoing(ctx context.Context) context.Context {
	in, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	if v := in.Get(rpctypes.MetadataRequireLeaderKey); len(v) > 0 {
		out.Set(rpctypes.MetadataRequireLeaderKey, v...)
	}
	return metadata.NewOutgoingContext(ctx, out)
}

// covered reports whether [key, end) lies inside one allowed range (end
// empty: key alone; end "\x00": every key from key on, never covered).
func (p *Proxy) covered(key, end []byte) bool {
	k, e := string(key), string(end)
	for _, r := range p.o.Ranges {
		if r.End == "" {
			if k == r.Key && (e == "" || e == r.Key+"\x00") {
				return true
			}
			continue
		}
		if k < r.Key || k >= r.End || e == "\x00" {
			continue
		}
		if e == "" || e <= r.End {
			return true
		}
	}
	return false
}

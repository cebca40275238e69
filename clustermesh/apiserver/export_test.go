package apiserver

import (
	"context"
	"log/slog"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// RemoteExportsForTest runs the MCS-API exports follower of cluster self
// (whose store is local) with clustermesh directory dir until ctx ends.
func RemoteExportsForTest(ctx context.Context, local kvstore.Client, dir, self string, log *slog.Logger) func() []records.Service {
	r := newRemoteExports(local, clustermesh.Dir(dir), self, log)
	go r.run(ctx) //nolint:errcheck // ends with ctx
	return r.Exported
}

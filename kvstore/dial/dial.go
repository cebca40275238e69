// Package dial opens a kvstore.Client for the backend a Config names. It is
// the one place that knows every backend; everything else codes against
// kvstore.Client.
package dial

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/consul"
	"github.com/weftnet/weft/kvstore/etcd"
)

// Open validates cfg and connects to its backend, failing within
// cfg.DialTimeout when the store does not answer.
func Open(ctx context.Context, cfg kvstore.Config, log *slog.Logger) (kvstore.Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Backend {
	case kvstore.BackendEtcd:
		return etcd.New(ctx, cfg, log)
	case kvstore.BackendConsul:
		return consul.New(ctx, cfg, log)
	}
	return nil, fmt.Errorf("kvstore backend %q: accepted are %q and %q", cfg.Backend, kvstore.BackendEtcd, kvstore.BackendConsul)
}

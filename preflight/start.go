package preflight

import (
	"context"
	"log/slog"

	"github.com/weftnet/weft/datapath/bpf"
)

// Start is what weft-agent runs before anything else: it mounts bpffs for
// cfg.BPFFS and finds or mounts a cgroup v2 hierarchy when cfg.CgroupPath
// is empty (returning the one to use, else cfg.CgroupPath), then runs
// every check but the store's. The error names each failed check with its
// fix, so the agent refuses to start with all of them at once.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (cgroupPath string, err error) {
	cfg.Startup, cfg.SkipStore = true, true
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	h := newHost(log)
	h.prepErr["bpffs"] = bpf.EnsureFS(cfg.BPFFS)
	if cfg.CgroupPath == "" {
		cfg.CgroupPath, h.prepErr["cgroup2"] = bpf.EnsureCgroup2()
	}
	return cfg.CgroupPath, run(ctx, cfg, h).Refusal()
}

package preflight_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/datapath/bpf"
	"github.com/weftnet/weft/internal/hosttest"
	"github.com/weftnet/weft/internal/testgate"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/preflight"
)

func result(t *testing.T, rep preflight.Report, name string) preflight.Result {
	t.Helper()
	for _, r := range rep.Checks {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no check %q in the report", name)
	return preflight.Result{}
}

// TestRun: on this host (bpffs mounted fresh in a private mount namespace,
// a real etcd) every check passes; with bpffs taken away the bpffs check
// fails with the mount command as its fix, the others still pass, and the
// table says FAIL with the fix.
func TestRun(t *testing.T) {
	testgate.Root(t)
	store := kvstoretest.StartEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := preflight.DefaultConfig()
	cfg.KVStore = store.Config()

	err := hosttest.InPrivateMounts(func() error {
		if err := hosttest.UnmountAll(bpf.DefaultFS); err != nil {
			return err
		}
		if err := hosttest.MountBPFFS(bpf.DefaultFS); err != nil {
			return err
		}
		rep, err := preflight.Run(ctx, cfg, nil)
		if err != nil {
			return err
		}
		if !rep.OK {
			t.Errorf("checks failed on the CI host: %+v", rep.Failed())
		}
		if len(rep.Checks) != 10 {
			t.Errorf("%d checks ran, want 10: %+v", len(rep.Checks), rep.Checks)
		}

		if err := hosttest.UnmountAll(bpf.DefaultFS); err != nil {
			return err
		}
		rep, err = preflight.Run(ctx, cfg, nil)
		if err != nil {
			return err
		}
		if rep.OK {
			t.Error("report OK without bpffs")
		}
		r := result(t, rep, "bpffs")
		if r.OK || !strings.Contains(r.Fix, "mount -t bpf bpf /sys/fs/bpf") || !strings.Contains(r.Fix, "weft-agent mounts it") {
			t.Errorf("bpffs check without bpffs: %+v", r)
		}
		if f := rep.Failed(); len(f) != 1 {
			t.Errorf("failed checks without bpffs: %+v, want only bpffs", f)
		}
		var out bytes.Buffer
		if err := rep.WriteTable(&out); err != nil {
			return err
		}
		for _, want := range []string{"bpffs", "FAIL", "fix: weft-agent mounts it at start", "1 check(s) failed"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("table misses %q:\n%s", want, out.String())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStart: as weft-agent starts on a host without bpffs, Start mounts it
// and lets the agent run; given a --cgroup-path that is not cgroup v2 it
// refuses, naming the check and the fix.
func TestStart(t *testing.T) {
	testgate.Root(t)
	ctx := context.Background()
	err := hosttest.InPrivateMounts(func() error {
		if err := hosttest.UnmountAll(bpf.DefaultFS); err != nil {
			return err
		}
		cfg := preflight.DefaultConfig()
		cg, err := preflight.Start(ctx, cfg, nil)
		if err != nil {
			t.Errorf("Start on a host without bpffs: %v", err)
		}
		if !bpf.IsFS(bpf.DefaultFS) {
			t.Errorf("Start did not mount bpffs at %s", bpf.DefaultFS)
		}
		if cg == "" || !bpf.IsCgroup2(cg) {
			t.Errorf("Start returned cgroup %q, not a cgroup2 directory", cg)
		}

		cfg.CgroupPath = t.TempDir()
		_, err = preflight.Start(ctx, cfg, nil)
		if err == nil || !strings.Contains(err.Error(), "- cgroup2: --cgroup-path "+cfg.CgroupPath+" is not a cgroup v2 directory; fix:") {
			t.Errorf("Start with a plain directory as --cgroup-path: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

package errtrack

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestRegistryKeepsTheLastErrorPerComponent(t *testing.T) {
	var out bytes.Buffer
	reg := New()
	log := slog.New(Wrap(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}), reg, "agent"))
	policy := log.With("node", "n1").With("component", "policy")
	policy.Info("policies enforced") // not an error, and below the output's level
	policy.Error("apply policy", "endpoint", 3, "err", errors.New("map full"))
	policy.Error("apply policy", "endpoint", 4, "err", errors.New("map still full"))
	log.With("component", "services").WithGroup("g").Error("program service frontend", "err", "no backend slot")
	log.Error("lost the store")
	log.Warn("a warning is no error")

	got := reg.Snapshot()
	want := []Entry{
		{Component: "agent", Message: "lost the store", Count: 1},
		{Component: "policy", Message: "apply policy: map still full", Count: 2},
		{Component: "services", Message: "program service frontend", Count: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("entries %+v, want %d", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Component != w.Component || !strings.HasPrefix(g.Message, w.Message) || g.Count != w.Count || g.Time.IsZero() {
			t.Errorf("entry %d = %+v, want %+v with a time", i, g, w)
		}
	}
	// Every record still reaches the output at its level.
	if s := out.String(); !strings.Contains(s, "map still full") || !strings.Contains(s, "a warning is no error") || strings.Contains(s, "policies enforced") {
		t.Errorf("output:\n%s", s)
	}
}

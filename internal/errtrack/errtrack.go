// Package errtrack remembers the last error each component of a daemon
// logged: an slog.Handler that passes every record on and, for records at
// ERROR level, keeps per "component" attribute the message, its error and
// when, with a count. `weft status` shows it as the agent's component
// health (the last error per reconciler, like cilium status's controllers).
//
// It depends on the standard library only.
package errtrack

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// Entry is one component's last logged error.
type Entry struct {
	Component string
	Message   string // the log message and, when present, its "err" attribute
	Time      time.Time
	Count     uint64 // errors logged by the component since start
}

// Registry holds the entries; the zero value is not usable (New).
type Registry struct {
	mu      sync.Mutex
	entries map[string]Entry
}

// New returns an empty registry.
func New() *Registry { return &Registry{entries: map[string]Entry{}} }

// Snapshot returns the entries sorted by component.
func (r *Registry) Snapshot() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Collect(maps.Values(r.entries))
	slices.SortFunc(out, func(a, b Entry) int {
		if a.Component < b.Component {
			return -1
		}
		if a.Component > b.Component {
			return 1
		}
		return 0
	})
	return out
}

func (r *Registry) record(component, msg string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[component]
	r.entries[component] = Entry{Component: component, Message: msg, Time: at, Count: e.Count + 1}
}

// Wrap returns a handler passing records to next and recording errors in r.
// Records without a component attribute count as component def.
func Wrap(next slog.Handler, r *Registry, def string) slog.Handler {
	return &handler{next: next, reg: r, component: def}
}

type handler struct {
	next      slog.Handler
	reg       *Registry
	component string
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || h.next.Enabled(ctx, l)
}

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelError {
		comp, msg := h.component, rec.Message
		rec.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "component":
				comp = a.Value.String()
			case "err", "error":
				msg += ": " + a.Value.String()
			}
			return true
		})
		at := rec.Time
		if at.IsZero() {
			at = time.Now()
		}
		h.reg.record(comp, msg, at)
	}
	if !h.next.Enabled(ctx, rec.Level) {
		return nil
	}
	return h.next.Handle(ctx, rec)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	for _, a := range attrs {
		if a.Key == "component" {
			c.component = a.Value.String()
		}
	}
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}

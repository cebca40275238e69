package k8s

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"

	"github.com/weftnet/weft/state/records"
)

// Status is what `weft status` shows of the source.
type Status struct {
	Enabled bool
	// Leader: this apiserver holds the Lease and mirrors; Holder is the
	// identity of the one that does.
	Leader bool
	Holder string
	// Kinds are keyed by records.KindK8s*.
	Kinds    map[string]KindStatus
	Problems []Problem
	// LastError is the last failure talking to Kubernetes or the store.
	LastError     string
	LastErrorTime time.Time
}

// KindStatus is one mirrored prefix.
type KindStatus struct {
	Synced  bool // the first full list is in the store
	Objects int  // records mirrored
}

// Problem is an object that could not be mirrored.
type Problem struct {
	Kind      string // Kubernetes kind, e.g. "Service"
	Namespace string
	Name      string
	Reason    string
}

// status is the shared, locked state behind Status.
type status struct {
	mu       sync.Mutex
	leader   bool
	holder   string
	kinds    map[string]KindStatus
	problems map[problemKey]string
	lastErr  string
	lastTime time.Time
}

type problemKey struct{ kind, namespace, name string }

func newStatus() *status {
	return &status{kinds: map[string]KindStatus{}, problems: map[problemKey]string{}}
}

func (s *status) snapshot() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Status{Enabled: true, Leader: s.leader, Holder: s.holder, Kinds: maps.Clone(s.kinds), LastError: s.lastErr, LastErrorTime: s.lastTime}
	for k, r := range s.problems {
		out.Problems = append(out.Problems, Problem{Kind: k.kind, Namespace: k.namespace, Name: k.name, Reason: r})
	}
	slices.SortFunc(out.Problems, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

func (s *status) setError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr, s.lastTime = err.Error(), time.Now()
}

func (s *status) setKind(kind string, f func(*KindStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.kinds[kind]
	f(&k)
	s.kinds[kind] = k
}

// report records a problem; it reports whether the problem is new or its
// reason changed (then an Event is due).
func (s *status) report(kind, ns, name, reason string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := problemKey{kind, ns, name}
	if s.problems[k] == reason {
		return false
	}
	s.problems[k] = reason
	return true
}

// clear forgets a problem of an object that is fine now or gone.
func (s *status) clear(kind, ns, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.problems, problemKey{kind, ns, name})
}

// clearProblems forgets every problem (a new term re-reports them).
func (s *status) clearProblems() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.problems = map[problemKey]string{}
}

// problemReporter turns problems into status entries and Warning Events.
type problemReporter struct {
	st       *status
	recorder record.EventRecorder
}

// ReasonNotMirrored is the reason of the Warning Events the source posts.
const ReasonNotMirrored = "WeftNotMirrored"

func (p problemReporter) report(obj runtime.Object, kind, ns, name, reason string) {
	if p.st.report(kind, ns, name, reason) && p.recorder != nil {
		p.recorder.Event(obj, corev1.EventTypeWarning, ReasonNotMirrored, reason)
	}
}

func (p problemReporter) clear(kind, ns, name string) { p.st.clear(kind, ns, name) }

// statusEvery is how often the leader compares its status with what it
// last wrote to the store; statusRefresh rewrites an unchanged one, so
// its time says the source is alive.
const (
	statusEvery   = 2 * time.Second
	statusRefresh = 30 * time.Second
)

// publishStatus writes the source's status to state/k8s/v1/<cluster>
// while this apiserver leads, for agents' weft status.
func (s *Source) publishStatus(ctx context.Context) {
	key := s.keys.KubernetesSource(s.cfg.Cluster)
	var last records.KubernetesSource
	var lastWrite time.Time
	tick := time.NewTicker(statusEvery)
	defer tick.Stop()
	for {
		rec := s.statusRecord()
		same := reflect.DeepEqual(rec.Kinds, last.Kinds) && slices.Equal(rec.Problems, last.Problems) &&
			rec.ProblemCount == last.ProblemCount && rec.LastError == last.LastError && rec.Holder == last.Holder
		if !same || time.Since(lastWrite) > statusRefresh {
			rec.Time = time.Now().UTC()
			if v, err := records.Encode(key, &rec); err != nil {
				s.log.Warn("encode the Kubernetes source's status", "err", err)
			} else if _, err := s.store.Update(ctx, key, v); err != nil && ctx.Err() == nil {
				s.log.Warn("write the Kubernetes source's status", "key", key, "err", err)
			} else {
				last, lastWrite = rec, time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// statusRecord is the store's form of Status.
func (s *Source) statusRecord() records.KubernetesSource {
	st := s.st.snapshot()
	rec := records.KubernetesSource{Holder: cmp.Or(st.Holder, s.cfg.Identity), Kinds: map[string]records.KubernetesKind{},
		ProblemCount: len(st.Problems), LastError: st.LastError, LastErrorTime: st.LastErrorTime}
	for kind, k := range st.Kinds {
		rec.Kinds[kind] = records.KubernetesKind{Synced: k.Synced, Objects: k.Objects}
	}
	for _, p := range st.Problems {
		if len(rec.Problems) == records.MaxKubernetesProblems {
			break
		}
		rec.Problems = append(rec.Problems, fmt.Sprintf("%s %s: %s", p.Kind, strings.TrimPrefix(p.Namespace+"/"+p.Name, "/"), p.Reason))
	}
	return rec
}

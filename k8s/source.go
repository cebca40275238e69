package k8s

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// Source mirrors one Kubernetes cluster into the store while it holds the
// cluster's Lease.
type Source struct {
	cfg     Config
	client  kubernetes.Interface
	dynamic dynamic.Interface
	store   kvstore.Client
	keys    records.Keys
	limiter *rate.Limiter
	st      *status
	log     *slog.Logger
	// onSynced, if set, is called once per term for each kind whose first
	// full list is in the store.
	onSynced func(ctx context.Context, kind string)
	// remoteExports are the other clusters' MCS-API exports (nil: none).
	remoteExports RemoteExports
}

// New validates cfg and builds the clients; nothing runs until Run.
func New(cfg Config, rc *rest.Config, store kvstore.Client, log *slog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rc = rest.CopyConfig(rc)
	rc.UserAgent = "weft-apiserver"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("create Kubernetes client for %s: %w", rc.Host, err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("create Kubernetes dynamic client for %s: %w", rc.Host, err)
	}
	return &Source{
		cfg: cfg, client: client, dynamic: dyn, store: store, keys: records.NewKeys(store.Prefix()),
		limiter: rate.NewLimiter(rate.Limit(cfg.WriteQPS), cfg.WriteBurst), st: newStatus(),
		log: log.With("component", "k8s", "cluster", cfg.Cluster),
	}, nil
}

// OnSynced registers f, called (from the mirroring goroutine) each time a
// kind's first full list of a leadership term is in the store.
func (s *Source) OnSynced(f func(ctx context.Context, kind string)) { s.onSynced = f }

// Status is a snapshot of the source's state.
func (s *Source) Status() Status { return s.st.snapshot() }

// Run campaigns for the Lease and mirrors while holding it, until ctx
// ends. Losing the Lease (or the connection to Kubernetes) stops
// mirroring and keeps the records as they are; the next term re-lists and
// converges.
func (s *Source) Run(ctx context.Context) error {
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: s.client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "weft-apiserver"})
	id := s.cfg.identity()
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: s.cfg.LeaseNamespace, Name: s.cfg.leaseName()},
		Client:     s.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	s.log.Info("campaigning for the Kubernetes source lease", "lease", s.cfg.LeaseNamespace+"/"+s.cfg.leaseName(), "identity", id)
	for ctx.Err() == nil {
		termDone := make(chan struct{})
		var started atomic.Bool
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: s.cfg.LeaseDuration, RenewDeadline: s.cfg.RenewDeadline, RetryPeriod: s.cfg.RetryPeriod,
			ReleaseOnCancel: true, Name: s.cfg.leaseName(),
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					started.Store(true)
					defer close(termDone)
					s.setLeader(true)
					s.log.Info("leading: mirroring Kubernetes into the store")
					if err := s.lead(lctx, recorder); err != nil && lctx.Err() == nil {
						s.st.setError(err)
						s.log.Warn("mirroring stopped", "err", err)
					}
				},
				OnStoppedLeading: func() { s.setLeader(false) },
				OnNewLeader: func(holder string) {
					s.st.mu.Lock()
					s.st.holder = holder
					s.st.mu.Unlock()
				},
			},
		})
		if err != nil {
			return fmt.Errorf("kubernetes source leader election: %w", err)
		}
		le.Run(ctx) // returns once leadership is lost or ctx ends
		if started.Load() {
			<-termDone // the term's context is cancelled by now
			if ctx.Err() == nil {
				err := fmt.Errorf("lost the lease %s/%s (kube-apiserver unreachable or too slow?); the store keeps the last mirrored state", s.cfg.LeaseNamespace, s.cfg.leaseName())
				s.st.setError(err)
				s.log.Warn("stopped mirroring", "err", err)
			}
		}
		s.setLeader(false)
		select {
		case <-ctx.Done():
		case <-time.After(s.cfg.RetryPeriod):
		}
	}
	return nil
}

func (s *Source) setLeader(v bool) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	s.st.leader = v
	if !v {
		for k, ks := range s.st.kinds {
			ks.Synced = false
			s.st.kinds[k] = ks
		}
	}
}

package kvstore

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors, checked with errors.Is. Backends wrap them with the key.
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("key not found")
	// ErrExists: a create-only write found the key already present.
	ErrExists = errors.New("key already exists")
	// ErrConflict: a compare-and-swap or delete-if-value found another
	// revision or value than the caller expected.
	ErrConflict = errors.New("conflicting revision or value")
	// ErrLockLost: a lock-guarded write was refused because the caller no
	// longer holds the lock (its lease expired or the lock key vanished).
	ErrLockLost = errors.New("lock not held")
	// ErrOutsidePrefix: the key is not under the client's prefix.
	ErrOutsidePrefix = errors.New("key outside the store prefix")
	// ErrValueTooLarge: the value exceeds the configured maximum size.
	ErrValueTooLarge = errors.New("value too large")
	// ErrClosed: the client has been closed.
	ErrClosed = errors.New("client closed")
)

// KeyValue is one entry as read from the store.
type KeyValue struct {
	Key   string
	Value []byte
	// Revision changes on every write of this key and only grows: etcd's
	// mod revision, Consul's modify index. CompareAndSwap takes it back.
	Revision uint64
	// Leased reports that the key is bound to some client's lease/session
	// and vanishes when that client dies.
	Leased bool
}

// Reader reads keys.
type Reader interface {
	// Get returns the key or an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) (KeyValue, error)
	// List returns every key under prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]KeyValue, error)
}

// Writer changes keys. Options bind a write to the client's lease (Leased)
// or make it conditional on holding a lock (Guarded). Revisions returned are
// the key's new Revision.
type Writer interface {
	// Create writes the key only if it does not exist, else ErrExists.
	Create(ctx context.Context, key string, value []byte, opts ...WriteOption) (uint64, error)
	// Update writes the key unconditionally.
	Update(ctx context.Context, key string, value []byte, opts ...WriteOption) (uint64, error)
	// UpdateIfDifferent writes only when the stored value (or its lease
	// binding) differs, and reports whether it wrote.
	UpdateIfDifferent(ctx context.Context, key string, value []byte, opts ...WriteOption) (bool, error)
	// CompareAndSwap writes only if the key's revision is still rev
	// (0: the key must not exist), else ErrConflict.
	CompareAndSwap(ctx context.Context, key string, value []byte, rev uint64, opts ...WriteOption) (uint64, error)
	// Delete removes the key; a missing key is not an error.
	Delete(ctx context.Context, key string, opts ...WriteOption) error
	// DeleteIfValue removes the key only while it holds value, else
	// ErrConflict (ErrNotFound when it is already gone).
	DeleteIfValue(ctx context.Context, key string, value []byte) error
}

// Watcher streams a prefix.
type Watcher interface {
	// ListAndWatch emits every key under prefix as EventUpsert, then one
	// EventListDone, then changes in store order. After a disconnect, a
	// server restart or a compaction it re-lists and emits EventDelete for
	// keys that vanished meanwhile and EventUpsert for keys that changed, so
	// a consumer applying events always converges to the store's contents.
	// The channel is closed once ctx ends.
	ListAndWatch(ctx context.Context, prefix string) <-chan Event
}

// Locker hands out distributed locks.
type Locker interface {
	// Lock blocks until the lock called name is held or ctx ends. The name
	// is placed under the prefix's .locks/ directory (a name that already
	// starts with the prefix is accepted as is). Locks are bound to the
	// client's lease: if the client dies the lock is released.
	Lock(ctx context.Context, key string) (Lock, error)
}

// Lock is a held distributed lock.
type Lock interface {
	// Unlock releases the lock; releasing a lost lock is not an error.
	Unlock(ctx context.Context) error
	// Done is closed when the lock is known to be lost (lease expired).
	Done() <-chan struct{}
}

// Client is a connection to one store, safe for concurrent use.
type Client interface {
	Reader
	Writer
	Watcher
	Locker
	// Prefix is the prefix every key must start with.
	Prefix() string
	// Status checks quorum and reports the heartbeat.
	Status(ctx context.Context) Status
	// LeaseLost returns a channel closed when the current lease/session is
	// lost; every leased key written under it is gone from the store. The
	// next leased write runs under a fresh lease. Call again for the next one.
	// Take the channel before re-creating keys, not after: a loss during the
	// repair then still closes the channel the caller holds. Before any
	// lease exists it is the channel of the first one.
	LeaseLost() <-chan struct{}
	// Close stops keep-alive, revokes the lease (removing leased keys and
	// releasing locks) and closes the connection.
	Close(ctx context.Context) error
}

// Status is the health of a client's connection to its store.
type Status struct {
	Backend   string
	Endpoints []string
	// Quorum: a linearizable read just succeeded (etcd) or the cluster has
	// a leader (Consul).
	Quorum bool
	// Heartbeat is the time last written to the heartbeat key (zero if none).
	Heartbeat time.Time
	Err       error
}

// EventType says what happened to a key.
type EventType int

const (
	EventUpsert EventType = iota
	EventDelete
	EventListDone
)

func (t EventType) String() string {
	switch t {
	case EventUpsert:
		return "upsert"
	case EventDelete:
		return "delete"
	case EventListDone:
		return "list-done"
	}
	return "unknown"
}

// Event is one change seen by ListAndWatch. Value is empty for deletes.
type Event struct {
	Type     EventType
	Key      string
	Value    []byte
	Revision uint64
}

type watchCoalescingKey struct{}

// WithWatchCoalescing asks the watches started with ctx to gather the
// changes of up to d into one delivery where the backend re-lists a prefix
// on every change (Consul): a watcher whose consumer tolerates that delay
// (an identity cache) spares the store a listing per change under bursts.
// A change after a quiet spell still comes at once. etcd streams each
// change and ignores it.
func WithWatchCoalescing(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, watchCoalescingKey{}, d)
}

// WatchCoalescing is the delay WithWatchCoalescing put into ctx (0: none).
func WatchCoalescing(ctx context.Context) time.Duration {
	d, _ := ctx.Value(watchCoalescingKey{}).(time.Duration)
	return d
}

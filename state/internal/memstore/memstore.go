package memstore

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/weftnet/weft/kvstore"
)

type entry struct {
	value []byte
	rev   uint64
	lease uint64
}

// Store is shared by the clients of one test.
type Store struct {
	mu       sync.Mutex
	data     map[string]entry
	rev      uint64
	leaseSeq uint64
	watchers map[*watcher]struct{}
	locks    map[string]*lock
	lockFree *sync.Cond
}

// New returns an empty store.
func New() *Store {
	s := &Store{data: map[string]entry{}, watchers: map[*watcher]struct{}{}, locks: map[string]*lock{}}
	s.lockFree = sync.NewCond(&s.mu)
	return s
}

// Client is one connection with its own lease.
type Client struct {
	s      *Store
	prefix string
	lease  uint64
	lost   chan struct{}
	closed bool
}

// NewClient returns a client with prefix (kvstore.DefaultPrefix if empty).
func (s *Store) NewClient(prefix string) *Client {
	if prefix == "" {
		prefix = kvstore.DefaultPrefix
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leaseSeq++
	return &Client{s: s, prefix: prefix, lease: s.leaseSeq, lost: make(chan struct{})}
}

var _ kvstore.Client = (*Client)(nil)

func (c *Client) Prefix() string { return c.prefix }

func (c *Client) Status(context.Context) kvstore.Status {
	return kvstore.Status{Backend: "memory", Quorum: true}
}

func (c *Client) LeaseLost() <-chan struct{} {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.lost
}

// ExpireLease drops every key and lock of the current lease, as a dead
// session would, and starts a fresh lease for later leased writes.
func (c *Client) ExpireLease() {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLease(c.lease)
	close(c.lost)
	s.leaseSeq++
	c.lease, c.lost = s.leaseSeq, make(chan struct{})
}

func (s *Store) dropLease(lease uint64) {
	for k, e := range s.data {
		if e.lease == lease {
			s.remove(k)
		}
	}
	for name, l := range s.locks {
		if l.lease == lease {
			delete(s.locks, name)
			close(l.done)
		}
	}
	s.lockFree.Broadcast()
}

func (c *Client) Close(context.Context) error {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.closed {
		c.closed = true
		s.dropLease(c.lease)
	}
	return nil
}

func (c *Client) check(key string) error {
	if c.closed {
		return kvstore.ErrClosed
	}
	return kvstore.CheckKey(c.prefix, key)
}

func (c *Client) Get(_ context.Context, key string) (kvstore.KeyValue, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if err := c.check(key); err != nil {
		return kvstore.KeyValue{}, err
	}
	e, ok := c.s.data[key]
	if !ok {
		return kvstore.KeyValue{}, fmt.Errorf("get %s: %w", key, kvstore.ErrNotFound)
	}
	return kvstore.KeyValue{Key: key, Value: bytes.Clone(e.value), Revision: e.rev, Leased: e.lease != 0}, nil
}

func (c *Client) List(_ context.Context, prefix string) ([]kvstore.KeyValue, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if err := c.check(prefix); err != nil {
		return nil, err
	}
	return c.s.list(prefix), nil
}

func (s *Store) list(prefix string) []kvstore.KeyValue {
	var out []kvstore.KeyValue
	for k, e := range s.data {
		if strings.HasPrefix(k, prefix) {
			out = append(out, kvstore.KeyValue{Key: k, Value: bytes.Clone(e.value), Revision: e.rev, Leased: e.lease != 0})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// write applies one conditional write under the store mutex.
func (c *Client) write(key string, value []byte, opts []kvstore.WriteOption, cond func(e entry, ok bool) error) (uint64, error) {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := c.check(key); err != nil {
		return 0, err
	}
	o := kvstore.ApplyOptions(opts)
	if o.Lock != nil {
		l, ok := o.Lock.(*lock)
		if !ok || s.locks[l.name] != l {
			return 0, fmt.Errorf("write %s: %w", key, kvstore.ErrLockLost)
		}
	}
	e, ok := s.data[key]
	if err := cond(e, ok); err != nil {
		return 0, fmt.Errorf("write %s: %w", key, err)
	}
	var lease uint64
	if o.Leased {
		lease = c.lease
	}
	if value == nil { // delete
		s.remove(key)
		return 0, nil
	}
	s.rev++
	s.data[key] = entry{value: bytes.Clone(value), rev: s.rev, lease: lease}
	s.notify(kvstore.Event{Type: kvstore.EventUpsert, Key: key, Value: bytes.Clone(value), Revision: s.rev})
	return s.rev, nil
}

func (s *Store) remove(key string) {
	if _, ok := s.data[key]; !ok {
		return
	}
	delete(s.data, key)
	s.rev++
	s.notify(kvstore.Event{Type: kvstore.EventDelete, Key: key, Revision: s.rev})
}

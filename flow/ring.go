package flow

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/api/agentapi"
)

// Ring holds a node's most recent flows. Writing never waits for readers:
// the oldest flow is overwritten, and a reader that had not read it yet
// learns how many it lost on its next read. Records are shared between
// readers and must not be modified once written.
type Ring struct {
	now func() time.Time

	mu      sync.RWMutex
	buf     []*agentapi.Flow
	next    uint64        // sequence number of the next write
	notify  chan struct{} // closed by the next write
	waiting bool          // someone holds notify

	lost  atomic.Uint64 // flows readers missed, summed
	start time.Time
}

// NewRing returns a ring of capacity flows (at least 1).
func NewRing(capacity int) *Ring {
	return &Ring{now: time.Now, buf: make([]*agentapi.Flow, max(capacity, 1)), notify: make(chan struct{}), start: time.Now()}
}

// Write appends f, setting its sequence number.
func (r *Ring) Write(f *agentapi.Flow) {
	r.mu.Lock()
	f.Sequence = r.next
	r.buf[r.next%uint64(len(r.buf))] = f
	r.next++
	if r.waiting {
		close(r.notify)
		r.notify, r.waiting = make(chan struct{}), false
	}
	r.mu.Unlock()
}

// Next is the sequence number the next write gets.
func (r *Ring) Next() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.next
}

// Oldest is the sequence number of the oldest flow held.
func (r *Ring) Oldest() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.oldest()
}

// oldest is the sequence number of the oldest flow held; r.mu held.
func (r *Ring) oldest() uint64 {
	return r.next - min(r.next, uint64(len(r.buf)))
}

// Read returns the flow at seq and the sequence to read next. When seq was
// overwritten already, it returns the oldest flow held and lost says how
// many flows were skipped. ok is false when seq is not written yet.
func (r *Ring) Read(seq uint64) (f *agentapi.Flow, next uint64, lost uint64, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if seq >= r.next {
		return nil, seq, 0, false
	}
	if old := r.oldest(); seq < old {
		lost, seq = old-seq, old
		r.lost.Add(lost)
	}
	return r.buf[seq%uint64(len(r.buf))], seq + 1, lost, true
}

// Wait returns once seq is written or ctx ends.
func (r *Ring) Wait(ctx context.Context, seq uint64) error {
	r.mu.Lock()
	if seq < r.next {
		r.mu.Unlock()
		return nil
	}
	ch := r.notify
	r.waiting = true
	r.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Last returns the sequence number from which reading yields the last n
// flows match accepts (oldest first), or, when fewer are held, the oldest.
func (r *Ring) Last(n uint64, match func(*agentapi.Flow) bool) uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	seq, found := r.next, uint64(0)
	for seq > r.oldest() && found < n {
		seq--
		if match(r.buf[seq%uint64(len(r.buf))]) {
			found++
		}
	}
	return seq
}

// reorderSlack bounds how far a flow may follow newer ones in the ring:
// the datapath's records are written by its event reader after the fact,
// with the kernel's time, while the L7 proxies write theirs at once.
const reorderSlack = 5 * time.Second

// Since returns a sequence number from which every flow held at or after
// t is read: that of the first flow after the last one older than t by
// more than reorderSlack (flows are written nearly, not exactly, in time
// order). Readers filter the flows before t out.
func (r *Ring) Since(t time.Time) uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ns := t.Add(-reorderSlack).UnixNano()
	seq := r.next
	for seq > r.oldest() && r.buf[(seq-1)%uint64(len(r.buf))].GetTimeNs() >= ns {
		seq--
	}
	return seq
}

// Status reports the fill level and rates.
func (r *Ring) Status() *agentapi.ServerStatusResponse {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.now()
	held := r.next - r.oldest()
	return &agentapi.ServerStatusResponse{
		NumFlows:       held,
		MaxFlows:       uint64(len(r.buf)),
		SeenFlows:      r.next,
		FlowsPerSecond: r.rate(now),
		LostFlows:      r.lost.Load(),
		UptimeNs:       int64(now.Sub(r.start)),
	}
}

// rate is the flows per second over the last minute; when the ring holds
// less than a minute, over the time it holds. r.mu held.
func (r *Ring) rate(now time.Time) float64 {
	const window = time.Minute
	from := now.Add(-window).UnixNano()
	var n uint64
	seq := r.next
	for seq > r.oldest() && r.buf[(seq-1)%uint64(len(r.buf))].GetTimeNs() >= from {
		seq--
		n++
	}
	span := window
	if seq > 0 && seq == r.oldest() && n > 0 {
		// Older flows were overwritten: the ring spans less than the
		// window, n flows in n-1 intervals since the oldest.
		span = now.Sub(time.Unix(0, r.buf[seq%uint64(len(r.buf))].GetTimeNs()))
		n--
	}
	if n == 0 || span <= 0 {
		return 0
	}
	return float64(n) / span.Seconds()
}

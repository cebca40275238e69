package kvstore

// WriteOption modifies one write.
type WriteOption func(*WriteOptions)

// WriteOptions is the resolved set of options; backends read it with
// ApplyOptions.
type WriteOptions struct {
	Leased bool
	Lock   Lock
}

// Leased binds the key to the client's lease/session: it vanishes when the
// client dies or closes.
func Leased() WriteOption { return func(o *WriteOptions) { o.Leased = true } }

// Guarded makes the write atomic with a check that lock is still held: the
// write happens in the same transaction as the check, or not at all
// (ErrLockLost). The lock must come from the same client.
func Guarded(lock Lock) WriteOption { return func(o *WriteOptions) { o.Lock = lock } }

// ApplyOptions resolves opts.
func ApplyOptions(opts []WriteOption) WriteOptions {
	var o WriteOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

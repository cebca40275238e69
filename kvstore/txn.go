package kvstore

import (
	"context"
	"errors"
	"fmt"
)

// ErrUnsupported: the backend cannot do what was asked (a Txn compare it
// has no way to check atomically).
var ErrUnsupported = errors.New("not supported by this backend")

// Transactor is a Client that writes several keys in one atomic
// transaction. Both backends implement it; a caller holding a plain Client
// type-asserts and falls back to locks when it is absent.
type Transactor interface {
	// Txn runs ops, in order, only if every compare holds, all in one
	// atomic step; else it writes nothing and returns an error wrapping
	// ErrConflict. The returned revision is the one every written key got.
	// A compare with Prefix set returns ErrUnsupported when the backend
	// cannot check prefixes (ComparesPrefixes).
	Txn(ctx context.Context, cmps []Compare, ops []Op) (uint64, error)
	// ComparesPrefixes reports whether Txn checks Compare.Prefix (etcd:
	// yes; Consul: no, its transactions check single keys only).
	ComparesPrefixes() bool
}

// Compare is one condition of a transaction.
type Compare struct {
	Key string
	// Revision the key must have; 0: the key must not exist. With Prefix:
	// every key under the prefix Key must have a revision ≤ Revision (0:
	// no key under it exists), so nothing was written there since a read
	// that saw Revision as its newest.
	Revision uint64
	Prefix   bool
}

// Absent holds while key does not exist.
func Absent(key string) Compare { return Compare{Key: key} }

// AtRevision holds while key exists with revision rev.
func AtRevision(key string, rev uint64) Compare { return Compare{Key: key, Revision: rev} }

// NoneUnder holds while no key under prefix exists.
func NoneUnder(prefix string) Compare { return Compare{Key: prefix, Prefix: true} }

// NothingNewerUnder holds while every key under prefix has a revision ≤ rev.
func NothingNewerUnder(prefix string, rev uint64) Compare {
	return Compare{Key: prefix, Revision: rev, Prefix: true}
}

// Op is one write of a transaction: a put (bound to the client's lease if
// Leased) or, with Delete, a delete.
type Op struct {
	Key    string
	Value  []byte
	Leased bool
	Delete bool
}

// Put writes key; opts may contain Leased (Guarded is not accepted in a Txn).
func Put(key string, value []byte, opts ...WriteOption) Op {
	return Op{Key: key, Value: value, Leased: ApplyOptions(opts).Leased}
}

// DeleteOp removes key (a missing key is not an error).
func DeleteOp(key string) Op { return Op{Key: key, Delete: true} }

// CheckTxn validates a transaction's keys and values for a client with
// prefix and maxValue.
func CheckTxn(prefix string, maxValue int, cmps []Compare, ops []Op) error {
	if len(ops) == 0 {
		return fmt.Errorf("transaction: no operations; accepted is at least one put or delete")
	}
	for _, c := range cmps {
		if err := CheckKey(prefix, c.Key); err != nil {
			return fmt.Errorf("transaction compare: %w", err)
		}
	}
	for _, o := range ops {
		var err error
		if o.Delete {
			err = CheckKey(prefix, o.Key)
		} else {
			err = Check(prefix, o.Key, o.Value, maxValue)
		}
		if err != nil {
			return fmt.Errorf("transaction operation: %w", err)
		}
	}
	return nil
}

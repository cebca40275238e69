package kvstoretest

import (
	"errors"
	"testing"

	"github.com/weftnet/weft/kvstore"
)

func transactor(t *testing.T, c kvstore.Client) kvstore.Transactor {
	t.Helper()
	tx, ok := c.(kvstore.Transactor)
	if !ok {
		t.Fatalf("client %T does not implement kvstore.Transactor", c)
	}
	return tx
}

// testTxnAllOrNothing: a transaction writes all its keys at one revision,
// leased ones bound to the lease; a failing compare writes none of them.
func testTxnAllOrNothing(t *testing.T, s Server) {
	c := s.NewClient(t)
	tx := transactor(t, c)
	p := prefixFor(t, s)
	ctx := ctxFor(t)
	rev, err := tx.Txn(ctx, []kvstore.Compare{kvstore.Absent(p + "a"), kvstore.Absent(p + "b")},
		[]kvstore.Op{kvstore.Put(p+"a", []byte("1")), kvstore.Put(p+"b", []byte("2"), kvstore.Leased())})
	if err != nil || rev == 0 {
		t.Fatalf("txn creating a and b: rev %d, err %v", rev, err)
	}
	a, b := mustGet(t, c, p+"a"), mustGet(t, c, p+"b")
	if string(a.Value) != "1" || a.Revision != rev || a.Leased || string(b.Value) != "2" || b.Revision != rev || !b.Leased {
		t.Fatalf("after txn at revision %d: a=%+v b=%+v, want a=1 not leased, b=2 leased, both at that revision", rev, a, b)
	}
	// b exists: the whole transaction is refused, c is not written.
	_, err = tx.Txn(ctx, []kvstore.Compare{kvstore.Absent(p + "c"), kvstore.Absent(p + "b")},
		[]kvstore.Op{kvstore.Put(p+"c", []byte("3")), kvstore.Put(p+"b", []byte("changed"))})
	wantErr(t, "txn with a failing absent compare", err, kvstore.ErrConflict)
	if _, err := c.Get(ctx, p+"c"); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("refused txn wrote c: get returned %v", err)
	}
	if kv := mustGet(t, c, p+"b"); string(kv.Value) != "2" {
		t.Fatalf("refused txn changed b to %q", kv.Value)
	}
	// A revision compare holds only at the key's current revision.
	_, err = tx.Txn(ctx, []kvstore.Compare{kvstore.AtRevision(p+"a", rev+1000)}, []kvstore.Op{kvstore.DeleteOp(p + "b")})
	wantErr(t, "txn with a stale revision", err, kvstore.ErrConflict)
	_, err = tx.Txn(ctx, []kvstore.Compare{kvstore.AtRevision(p+"missing", rev)}, []kvstore.Op{kvstore.DeleteOp(p + "b")})
	wantErr(t, "txn comparing the revision of a missing key", err, kvstore.ErrConflict)
	rev2, err := tx.Txn(ctx, []kvstore.Compare{kvstore.AtRevision(p+"a", rev)},
		[]kvstore.Op{kvstore.DeleteOp(p + "b"), kvstore.Put(p+"a", []byte("1b"))})
	if err != nil || rev2 <= rev {
		t.Fatalf("txn at a's revision: rev %d (before %d), err %v", rev2, rev, err)
	}
	if _, err := c.Get(ctx, p+"b"); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("txn did not delete b: get returned %v", err)
	}
	if kv := mustGet(t, c, p+"a"); string(kv.Value) != "1b" || kv.Revision != rev2 {
		t.Fatalf("after txn: a=%+v, want 1b at revision %d", kv, rev2)
	}
	// Leased keys of a transaction go with the client.
	other := s.NewClient(t)
	if _, err := transactor(t, other).Txn(ctx, nil, []kvstore.Op{kvstore.Put(p+"leased", []byte("x"), kvstore.Leased())}); err != nil {
		t.Fatalf("leased txn: %v", err)
	}
	if err := other.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	eventually(t, leaseDeadline(s), "leased key of a transaction gone after close", func() error {
		if _, err := c.Get(ctxFor(t), p+"leased"); !errors.Is(err, kvstore.ErrNotFound) {
			return errors.New("still present")
		}
		return nil
	})
	_, err = tx.Txn(ctx, nil, []kvstore.Op{kvstore.Put("elsewhere/k", []byte("x"))})
	wantErr(t, "txn outside the prefix", err, kvstore.ErrOutsidePrefix)
}

// testTxnPrefix: a prefix compare holds while nothing under the prefix is
// newer than its revision (0: nothing there); a backend that cannot check
// prefixes refuses it with ErrUnsupported and writes nothing.
func testTxnPrefix(t *testing.T, s Server) {
	c := s.NewClient(t)
	tx := transactor(t, c)
	p := prefixFor(t, s)
	ctx := ctxFor(t)
	dir := p + "dir/"
	if !tx.ComparesPrefixes() {
		_, err := tx.Txn(ctx, []kvstore.Compare{kvstore.NoneUnder(dir)}, []kvstore.Op{kvstore.Put(p+"x", []byte("x"))})
		wantErr(t, "prefix compare on a backend without them", err, kvstore.ErrUnsupported)
		if _, err := c.Get(ctx, p+"x"); !errors.Is(err, kvstore.ErrNotFound) {
			t.Fatalf("refused txn wrote x: get returned %v", err)
		}
		return
	}
	mustUpdate(t, c, p+"dir-sibling", "not under dir/")
	rev, err := tx.Txn(ctx, []kvstore.Compare{kvstore.NoneUnder(dir)}, []kvstore.Op{kvstore.Put(dir+"first", []byte("1"))})
	if err != nil {
		t.Fatalf("txn on an empty prefix: %v", err)
	}
	_, err = tx.Txn(ctx, []kvstore.Compare{kvstore.NoneUnder(dir)}, []kvstore.Op{kvstore.Put(dir+"second", []byte("2"))})
	wantErr(t, "none-under compare with a key under the prefix", err, kvstore.ErrConflict)
	_, err = tx.Txn(ctx, []kvstore.Compare{kvstore.NothingNewerUnder(dir, rev-1)}, []kvstore.Op{kvstore.Put(dir+"second", []byte("2"))})
	wantErr(t, "nothing-newer compare below the newest key", err, kvstore.ErrConflict)
	if _, err := tx.Txn(ctx, []kvstore.Compare{kvstore.NothingNewerUnder(dir, rev)}, []kvstore.Op{kvstore.Put(dir+"second", []byte("2"))}); err != nil {
		t.Fatalf("nothing-newer compare at the newest key's revision: %v", err)
	}
	list, err := c.List(ctx, dir)
	if err != nil || len(list) != 2 {
		t.Fatalf("list %s: %d keys, err %v; want first and second", dir, len(list), err)
	}
}

package memstore

import (
	"bytes"
	"context"

	"github.com/weftnet/weft/kvstore"
)

func always(entry, bool) error { return nil }

func (c *Client) Create(_ context.Context, key string, value []byte, opts ...kvstore.WriteOption) (uint64, error) {
	return c.write(key, nonNil(value), opts, func(_ entry, ok bool) error {
		if ok {
			return kvstore.ErrExists
		}
		return nil
	})
}

func (c *Client) Update(_ context.Context, key string, value []byte, opts ...kvstore.WriteOption) (uint64, error) {
	return c.write(key, nonNil(value), opts, always)
}

func (c *Client) UpdateIfDifferent(_ context.Context, key string, value []byte, opts ...kvstore.WriteOption) (bool, error) {
	o := kvstore.ApplyOptions(opts)
	same := errSame{}
	_, err := c.write(key, nonNil(value), opts, func(e entry, ok bool) error {
		if ok && bytes.Equal(e.value, value) && (e.lease != 0) == o.Leased && (!o.Leased || e.lease == c.lease) {
			return same
		}
		return nil
	})
	if err != nil && isSame(err) {
		return false, nil
	}
	return err == nil, err
}

func (c *Client) CompareAndSwap(_ context.Context, key string, value []byte, rev uint64, opts ...kvstore.WriteOption) (uint64, error) {
	return c.write(key, nonNil(value), opts, func(e entry, ok bool) error {
		if (rev == 0 && ok) || (rev != 0 && (!ok || e.rev != rev)) {
			return kvstore.ErrConflict
		}
		return nil
	})
}

func (c *Client) Delete(_ context.Context, key string, opts ...kvstore.WriteOption) error {
	_, err := c.write(key, nil, opts, always)
	return err
}

func (c *Client) DeleteIfValue(_ context.Context, key string, value []byte) error {
	_, err := c.write(key, nil, nil, func(e entry, ok bool) error {
		if !ok {
			return kvstore.ErrNotFound
		}
		if !bytes.Equal(e.value, value) {
			return kvstore.ErrConflict
		}
		return nil
	})
	return err
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

type errSame struct{}

func (errSame) Error() string { return "same value" }

func isSame(err error) bool {
	for err != nil {
		if _, ok := err.(errSame); ok {
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

package consul_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
)

// TestLargeValues: values travel base64-encoded inside a transaction, so a
// default agent (txn_max_req_len 512 KiB) refuses values well under
// MaxValueSize; the error says so and which agent setting lifts it.
func TestLargeValues(t *testing.T) {
	const big = 450 << 10
	t.Run("default agent", func(t *testing.T) {
		c := open(t, startAgent(t, ""))
		if _, err := c.Update(ctx(t), "weft/v", bytes.Repeat([]byte("x"), 300<<10)); err != nil {
			t.Fatalf("300 KiB value: %v", err)
		}
		_, err := c.Update(ctx(t), "weft/v", bytes.Repeat([]byte("x"), big))
		if !errors.Is(err, kvstore.ErrValueTooLarge) || !strings.Contains(err.Error(), "txn_max_req_len") {
			t.Fatalf("450 KiB value: %v, want ErrValueTooLarge naming txn_max_req_len", err)
		}
	})
	t.Run("raised limit", func(t *testing.T) {
		c := open(t, startAgent(t, `limits { txn_max_req_len = 1048576 }`))
		v := bytes.Repeat([]byte("x"), consulValueLimit)
		if _, err := c.Update(ctx(t), "weft/v", v, kvstore.Leased()); err != nil {
			t.Fatalf("MaxValueSize value with txn_max_req_len 1 MiB: %v", err)
		}
		if kv, err := c.Get(ctx(t), "weft/v"); err != nil || !bytes.Equal(kv.Value, v) {
			t.Fatalf("read back %d bytes, err %v", len(kv.Value), err)
		}
	})
}

// TestRateLimited: requests wait for the limiter, and give up with their
// ctx while waiting.
func TestRateLimited(t *testing.T) {
	s := startAgent(t, "")
	// New's leader check takes the one token; the next arrives in 1000s.
	c := open(t, s, func(c *kvstore.Config) { c.RateLimit = kvstore.RateLimit{QPS: 0.001, Burst: 1} })
	short, cancel := context.WithTimeout(ctx(t), 100*time.Millisecond)
	defer cancel()
	_, err := c.Get(short, "weft/a")
	if err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("get beyond the rate limit: %v, want a rate limit error", err)
	}
}

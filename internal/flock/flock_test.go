package flock

import (
	"path/filepath"
	"testing"
	"time"
)

// TestLockExcludes: a second holder waits until the first releases.
func TestLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	unlock, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func())
	go func() {
		second, err := Lock(path)
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- second
	}()
	select {
	case <-got:
		t.Fatal("second Lock returned while the first was held")
	case <-time.After(200 * time.Millisecond):
	}
	unlock()
	select {
	case second := <-got:
		if second != nil {
			second()
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second Lock still waiting 10s after the first was released")
	}
}

func TestLockBadPath(t *testing.T) {
	if _, err := Lock(filepath.Join(t.TempDir(), "missing", "lock")); err == nil {
		t.Fatal("lock in a missing directory succeeded")
	}
}

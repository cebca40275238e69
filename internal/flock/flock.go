// Package flock takes exclusive advisory file locks (flock(2)) that
// serialise processes sharing one directory: tool builds in the tool cache,
// commands acting on one testenv environment.
package flock

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Lock blocks until it holds an exclusive lock on path (created if
// missing); the returned func releases it.
func Lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

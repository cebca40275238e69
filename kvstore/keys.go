package kvstore

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxKeySize bounds a key's length in bytes (Consul refuses much longer keys).
const MaxKeySize = 1024

// Check validates a key and value against a client's prefix and size limit
// before anything is sent to the store.
func Check(prefix, key string, value []byte, maxValue int) error {
	if err := CheckKey(prefix, key); err != nil {
		return err
	}
	if len(value) > maxValue {
		return fmt.Errorf("write %s: %w: %d bytes, at most %d accepted", key, ErrValueTooLarge, len(value), maxValue)
	}
	return nil
}

// CheckKey accepts a key under prefix, valid UTF-8, without NUL, no longer
// than MaxKeySize. A prefix passed to List or ListAndWatch is checked the same way.
func CheckKey(prefix, key string) error {
	if !strings.HasPrefix(key, prefix) {
		return fmt.Errorf("key %q: %w %q", key, ErrOutsidePrefix, prefix)
	}
	if len(key) > MaxKeySize {
		return fmt.Errorf("key %.40q…: %d bytes, at most %d accepted", key, len(key), MaxKeySize)
	}
	if !utf8.ValidString(key) || strings.ContainsRune(key, 0) {
		return fmt.Errorf("key %q: must be valid UTF-8 without NUL", key)
	}
	return nil
}

// HeartbeatKey is the key a store's owner (the apiserver) refreshes
// periodically; clients read its age to tell a live store from a stale one.
func HeartbeatKey(prefix string) string { return prefix + ".heartbeat" }

// LockKey is where the lock called name lives.
func LockKey(prefix, name string) string {
	return prefix + ".locks/" + strings.TrimPrefix(name, prefix)
}

package kvstore

import (
	"fmt"
	"time"
)

// FormatHeartbeat encodes a heartbeat time for HeartbeatKey.
func FormatHeartbeat(t time.Time) []byte { return []byte(t.UTC().Format(time.RFC3339Nano)) }

// ParseHeartbeat decodes a heartbeat value.
func ParseHeartbeat(v []byte) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, string(v))
	if err != nil {
		return time.Time{}, fmt.Errorf("heartbeat value %q: not an RFC 3339 time", v)
	}
	return t, nil
}

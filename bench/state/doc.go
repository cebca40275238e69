// Package state benchmarks Weft's shared state in the store (state/...)
// against real stores, embedded etcd and a Consul agent, so the two
// backends are compared in one run (etcd is the baseline column):
//
//		go test -run '^$' -bench . -benchtime 1x ./bench/state | go run ./bench/benchtable
//
//	  - Identities: new identities per second with 1, 8 and 32 concurrent
//	    allocators (one client and node each).
//	  - IPCachePropagation: publish in one client → change event in 100
//	    watchers, p50/p99 in milliseconds.
//	  - IPCacheBootstrap: a new watcher loading 100k entries, seconds and heap
//	    bytes per entry.
package state

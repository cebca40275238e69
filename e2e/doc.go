// Package e2e holds Weft's end-to-end tests and benchmarks: real
// weft-agent, weft-cni and weft binaries (built once per run with `go
// build`), real stores (embedded etcd in `weft testenv run-store`, a Consul
// dev agent), environments built by testenv, traffic checked by
// connectivity. They need root; under CI (or WEFT_REQUIRE_ALL=1) a missing
// capability fails instead of skipping.
//
//	go test -race -count=1 ./e2e/                       # the suite, ~5–10 minutes
//	go test -run '^$' -bench . -benchtime 1x ./e2e/     # pod start latency, agent memory
package e2e

// Package toolcache finds, or builds once, the external programs Weft's tests
// and environments run for real: a Consul agent, etcd, cnitool, and
// kube-apiserver with kubectl (one throwaway module builds both; see
// KubeAPIServer). Each tool is built from the Go module proxy inside a
// throwaway main module at a pinned version and cached outside the clone,
// keyed by tool and version, so later runs (make test, a plain go test of one
// package, CI) reuse it.
//
// It depends only on the go command being on PATH (or at /usr/local/go/bin).
package toolcache

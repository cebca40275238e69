// Package agentapi is the gRPC API weft-agent serves on its unix socket,
// generated from agent.proto, policy.proto, service.proto, observer.proto,
// connectivity.proto, l7lb.proto and ingress.proto (STABLE, v1)
// with Debian's protoc and the protoc-gen-go / protoc-gen-go-grpc versions
// pinned in go.mod's tool block.
package agentapi

//go:generate sh -c "protoc --plugin=protoc-gen-go=$(go tool -n protoc-gen-go) --plugin=protoc-gen-go-grpc=$(go tool -n protoc-gen-go-grpc) --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative agent.proto policy.proto service.proto observer.proto connectivity.proto l7lb.proto ingress.proto"

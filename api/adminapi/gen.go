// Package adminapi is the weft-apiserver's admin gRPC API, generated from
// admin.proto (STABLE, v1) with Debian's protoc and the protoc-gen-go /
// protoc-gen-go-grpc versions pinned in go.mod's tool block.
package adminapi

//go:generate sh -c "protoc --plugin=protoc-gen-go=$(go tool -n protoc-gen-go) --plugin=protoc-gen-go-grpc=$(go tool -n protoc-gen-go-grpc) --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative admin.proto"

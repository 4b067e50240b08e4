// Package grpcpb holds the generated Go code of inference.proto, the subset
// of the Open Inference Protocol (KServe v2) gRPC API that medsa uses. The
// .pb.go files are committed, so building needs no protoc. They were made with
// protoc 3.21.12 (Debian protobuf-compiler), protoc-gen-go v1.36.12 and
// protoc-gen-go-grpc v1.5.1:
//
//	apt-get install -y protobuf-compiler
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
//	go generate ./model/oip/grpcpb
package grpcpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative inference.proto

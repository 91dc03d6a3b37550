// Package shm is the shared-memory transport between an application and its
// sidecar on the same host: a request ring and a response ring in one shared
// segment, with a Unix socket for the handshake and for wake-ups. The byte
// layout is specified in SPEC.md in this directory, which is the contract
// for every implementation (Go here, Java in sdk-java).
//
// Client side: Dial returns a ClientConn whose Call sends a method id and a
// protobuf-encoded request of the runtime API and returns the encoded
// response. Server side: Listen and Server.Serve dispatch calls to a Handler.
// Errors travel as google.rpc.Status, so both sides see gRPC status codes.
//
// gRPC-shaped code plugs in unchanged: *ClientConn implements
// grpc.ClientConnInterface for unary methods (runtimev1.NewRuntimeClient
// works over it), and NewServiceHandler serves a grpc.ServiceDesc and its
// implementation through the same unary interceptor chain as gRPC.
//
// Only the unary methods of outrig.runtime.v1.Runtime have method ids; the
// streaming methods stay on gRPC.
package shm

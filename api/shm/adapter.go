package shm

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Adapters between this transport and gRPC-shaped code, so that one service
// implementation and one interceptor chain serve both transports.

// NewServiceHandler returns a Handler that serves, by method id, the unary
// methods of desc implemented by impl (what grpc.Server.RegisterService
// takes, e.g. &runtimev1.Runtime_ServiceDesc and a runtimev1.RuntimeServer).
// Each call is decoded with the method's own request type, passed through
// interceptor (nil for none) with grpc.UnaryServerInfo.FullMethod set, as
// grpc.Server does, and the response is encoded. Method ids of other
// services or of methods desc lacks answer UNIMPLEMENTED. Calls carry no
// gRPC metadata.
func NewServiceHandler(desc *grpc.ServiceDesc, impl any, interceptor grpc.UnaryServerInterceptor) (Handler, error) {
	if desc == nil || impl == nil {
		return nil, fmt.Errorf("shm: NewServiceHandler needs a service description and an implementation")
	}
	h := &serviceHandler{impl: impl, interceptor: interceptor}
	for _, m := range desc.Methods {
		full := "/" + desc.ServiceName + "/" + m.MethodName
		if id, ok := MethodID(full); ok {
			h.methods[id] = m.Handler
		}
	}
	found := false
	for _, m := range h.methods {
		found = found || m != nil
	}
	if !found {
		return nil, fmt.Errorf("shm: service %s has no method with a shared-memory method id", desc.ServiceName)
	}
	return h, nil
}

type serviceHandler struct {
	impl        any
	interceptor grpc.UnaryServerInterceptor
	methods     [MethodGetMetadata + 1]grpc.MethodHandler
}

func (h *serviceHandler) Handle(ctx context.Context, methodID uint16, req []byte) ([]byte, error) {
	if int(methodID) >= len(h.methods) || h.methods[methodID] == nil {
		return nil, status.Errorf(codes.Unimplemented, "shm: method id %d is not served", methodID)
	}
	dec := func(v any) error {
		m, ok := v.(proto.Message)
		if !ok {
			return status.Errorf(codes.Internal, "shm: request type %T is not a protobuf message", v)
		}
		if err := proto.Unmarshal(req, m); err != nil {
			return status.Errorf(codes.InvalidArgument, "shm: decoding request of method id %d: %v", methodID, err)
		}
		return nil
	}
	resp, err := h.methods[methodID](h.impl, ctx, dec, h.interceptor)
	if err != nil {
		return nil, err
	}
	m, ok := resp.(proto.Message)
	if !ok {
		return nil, status.Errorf(codes.Internal, "shm: response type %T is not a protobuf message", resp)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "shm: encoding response of method id %d: %v", methodID, err)
	}
	return b, nil
}

// Invoke makes *ClientConn a grpc.ClientConnInterface for unary methods, so
// generated clients work over shared memory:
// runtimev1.NewRuntimeClient(conn).GetState(ctx, req). Methods without a
// shared-memory id fail with UNIMPLEMENTED; call options are ignored.
func (c *ClientConn) Invoke(ctx context.Context, method string, args, reply any, _ ...grpc.CallOption) error {
	id, ok := MethodID(method)
	if !ok {
		return status.Errorf(codes.Unimplemented, "shm: %s has no shared-memory method id; use gRPC", method)
	}
	in, ok := args.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "shm: request type %T is not a protobuf message", args)
	}
	out, ok := reply.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "shm: reply type %T is not a protobuf message", reply)
	}
	req, err := proto.Marshal(in)
	if err != nil {
		return status.Errorf(codes.Internal, "shm: encoding %s request: %v", method, err)
	}
	resp, err := c.Call(ctx, id, req)
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(resp, out); err != nil {
		return status.Errorf(codes.Internal, "shm: decoding %s response: %v", method, err)
	}
	return nil
}

// NewStream always fails: streams stay on gRPC (SPEC.md §7).
func (c *ClientConn) NewStream(_ context.Context, _ *grpc.StreamDesc, method string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Errorf(codes.Unimplemented, "shm: %s is a stream; streams stay on gRPC", method)
}

var _ grpc.ClientConnInterface = (*ClientConn)(nil)

package shm

import (
	"context"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
)

// stateServer is a real RuntimeServer with one method; the others answer
// UNIMPLEMENTED from the generated base.
type stateServer struct {
	runtimev1.UnimplementedRuntimeServer
}

func (stateServer) GetState(_ context.Context, req *runtimev1.GetStateRequest) (*runtimev1.GetStateResponse, error) {
	if req.GetStoreName() != "orders" {
		return nil, status.Errorf(codes.NotFound, "state store %q not found", req.GetStoreName())
	}
	return &runtimev1.GetStateResponse{Data: []byte("value of " + req.GetKey()), Etag: "7", Found: true}, nil
}

// The generated client and server run unchanged over shared memory, and
// the interceptor chain sees each call with its gRPC method name.
func TestGeneratedClientAndServerOverSharedMemory(t *testing.T) {
	checkLeaks(t)
	var mu sync.Mutex
	var seen []string
	interceptor := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		mu.Lock()
		seen = append(seen, info.FullMethod)
		mu.Unlock()
		return next(ctx, req)
	}
	h, err := NewServiceHandler(&runtimev1.Runtime_ServiceDesc, stateServer{}, interceptor)
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, ServerOptions{}, h)
	client := runtimev1.NewRuntimeClient(dial(t, s.Addr(), DialOptions{}))

	resp, err := client.GetState(context.Background(), &runtimev1.GetStateRequest{StoreName: "orders", Key: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	want := &runtimev1.GetStateResponse{Data: []byte("value of k1"), Etag: "7", Found: true}
	if !proto.Equal(resp, want) {
		t.Fatalf("GetState = %v, want %v", resp, want)
	}
	_, err = client.GetState(context.Background(), &runtimev1.GetStateRequest{StoreName: "nope", Key: "k"})
	if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != `state store "nope" not found` {
		t.Fatalf("unknown store: %v, want NOT_FOUND", err)
	}
	if _, err := client.SaveState(context.Background(), &runtimev1.SaveStateRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("unimplemented method: %v, want UNIMPLEMENTED", err)
	}
	if _, err := client.Subscribe(context.Background()); status.Code(err) != codes.Unimplemented {
		t.Fatalf("stream over shm: %v, want UNIMPLEMENTED", err)
	}
	mu.Lock()
	defer mu.Unlock()
	wantSeen := []string{runtimev1.Runtime_GetState_FullMethodName, runtimev1.Runtime_GetState_FullMethodName, runtimev1.Runtime_SaveState_FullMethodName}
	if len(seen) != len(wantSeen) {
		t.Fatalf("interceptor saw %v, want %v", seen, wantSeen)
	}
	for i := range seen {
		if seen[i] != wantSeen[i] {
			t.Fatalf("interceptor saw %v, want %v", seen, wantSeen)
		}
	}
}

func TestServiceHandlerRejectsBadInput(t *testing.T) {
	h, err := NewServiceHandler(&runtimev1.Runtime_ServiceDesc, stateServer{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(context.Background(), MethodGetState, []byte{0xff, 0xff}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("garbage request: %v, want INVALID_ARGUMENT", err)
	}
	if _, err := h.Handle(context.Background(), 999, nil); status.Code(err) != codes.Unimplemented {
		t.Errorf("unknown id: %v, want UNIMPLEMENTED", err)
	}
	if _, err := NewServiceHandler(&grpc.ServiceDesc{ServiceName: "other.Svc"}, struct{}{}, nil); err == nil {
		t.Error("a service without shm methods was accepted")
	}
}

package outrig

import (
	"context"
	"fmt"
	"strings"
	"sync"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	"github.com/outrig/outrig/api/shm"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// WithSharedMemory carries the unary calls (state, publish, invoke,
// bindings, metadata) over the shared-memory transport of a sidecar on the
// same host: a pair of rings in a memory segment shared with the sidecar,
// set up over the Unix socket socketPath. An empty socketPath means the
// sidecar's default: the app API socket path plus ".shm" (the address must
// then be a unix:// address). Subscribe, SubscribeBinding and Serve stay on
// gRPC. When the sidecar restarts, the next call reconnects.
func WithSharedMemory(socketPath string) Option {
	return func(c *clientConfig) { c.shm, c.shmPath = true, socketPath }
}

// shmTransport sends unary calls over api/shm and everything else over
// the gRPC transport it wraps.
type shmTransport struct {
	*grpcTransport
	path  string
	appID string

	mu   sync.Mutex
	conn *shm.ClientConn
}

func newShmTransport(g *grpcTransport, address, path, appID string) (*shmTransport, error) {
	if path == "" {
		p, ok := strings.CutPrefix(address, "unix://")
		if !ok || p == "" {
			return nil, fmt.Errorf("outrig: WithSharedMemory(\"\") needs a unix:// address, got %q: %w", address, ErrInvalidArgument)
		}
		path = p + ".shm"
	}
	return &shmTransport{grpcTransport: g, path: path, appID: appID}, nil
}

// client returns the live shm connection, dialing a new one after the
// previous one failed (the sidecar restarted).
func (t *shmTransport) client(ctx context.Context) (*shm.ClientConn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn != nil {
		select {
		case <-t.conn.Done():
			t.conn.Close()
			t.conn = nil
		default:
			return t.conn, nil
		}
	}
	c, err := shm.Dial(ctx, t.path, shm.DialOptions{AppID: t.appID})
	if err != nil {
		return nil, status.Error(codes.Unavailable, fmt.Sprintf("shared memory %s: %v", t.path, err))
	}
	t.conn = c
	return c, nil
}

func shmCall[Resp proto.Message](t *shmTransport, ctx context.Context, op string, method uint16, req proto.Message, resp Resp) (Resp, error) {
	var zero Resp
	b, err := proto.Marshal(req)
	if err != nil {
		return zero, newError(op, codes.InvalidArgument, err.Error())
	}
	c, err := t.client(ctx)
	if err != nil {
		return zero, fromRPC(op, err, nil)
	}
	out, err := c.Call(ctx, method, b)
	if err != nil {
		return zero, fromRPC(op, err, nil)
	}
	if err := proto.Unmarshal(out, resp); err != nil {
		return zero, newError(op, codes.Internal, "malformed answer: "+err.Error())
	}
	return resp, nil
}

func (t *shmTransport) invoke(ctx context.Context, req *runtimev1.InvokeRequest) (*runtimev1.InvokeResponse, error) {
	return shmCall(t, ctx, "Invoke", shm.MethodInvoke, req, &runtimev1.InvokeResponse{})
}

func (t *shmTransport) getState(ctx context.Context, req *runtimev1.GetStateRequest) (*runtimev1.GetStateResponse, error) {
	return shmCall(t, ctx, "GetState", shm.MethodGetState, req, &runtimev1.GetStateResponse{})
}

func (t *shmTransport) getBulkState(ctx context.Context, req *runtimev1.GetBulkStateRequest) (*runtimev1.GetBulkStateResponse, error) {
	return shmCall(t, ctx, "GetBulkState", shm.MethodGetBulkState, req, &runtimev1.GetBulkStateResponse{})
}

func (t *shmTransport) saveState(ctx context.Context, req *runtimev1.SaveStateRequest) error {
	_, err := shmCall(t, ctx, "SaveState", shm.MethodSaveState, req, &runtimev1.SaveStateResponse{})
	return err
}

func (t *shmTransport) deleteState(ctx context.Context, req *runtimev1.DeleteStateRequest) error {
	_, err := shmCall(t, ctx, "DeleteState", shm.MethodDeleteState, req, &runtimev1.DeleteStateResponse{})
	return err
}

func (t *shmTransport) deleteBulkState(ctx context.Context, req *runtimev1.DeleteBulkStateRequest) error {
	_, err := shmCall(t, ctx, "DeleteBulkState", shm.MethodDeleteBulkState, req, &runtimev1.DeleteBulkStateResponse{})
	return err
}

func (t *shmTransport) executeStateTransaction(ctx context.Context, req *runtimev1.ExecuteStateTransactionRequest) error {
	_, err := shmCall(t, ctx, "ExecuteStateTransaction", shm.MethodExecuteStateTransaction, req, &runtimev1.ExecuteStateTransactionResponse{})
	return err
}

func (t *shmTransport) publish(ctx context.Context, req *runtimev1.PublishRequest) error {
	_, err := shmCall(t, ctx, "Publish", shm.MethodPublish, req, &runtimev1.PublishResponse{})
	return err
}

func (t *shmTransport) bulkPublish(ctx context.Context, req *runtimev1.BulkPublishRequest) (*runtimev1.BulkPublishResponse, error) {
	return shmCall(t, ctx, "BulkPublish", shm.MethodBulkPublish, req, &runtimev1.BulkPublishResponse{})
}

func (t *shmTransport) invokeBinding(ctx context.Context, req *runtimev1.InvokeBindingRequest) (*runtimev1.InvokeBindingResponse, error) {
	return shmCall(t, ctx, "InvokeBinding", shm.MethodInvokeBinding, req, &runtimev1.InvokeBindingResponse{})
}

func (t *shmTransport) getMetadata(ctx context.Context) (*runtimev1.GetMetadataResponse, error) {
	return shmCall(t, ctx, "GetMetadata", shm.MethodGetMetadata, &runtimev1.GetMetadataRequest{}, &runtimev1.GetMetadataResponse{})
}

func (t *shmTransport) close() error {
	t.mu.Lock()
	if t.conn != nil {
		t.conn.Close()
		t.conn = nil
	}
	t.mu.Unlock()
	return t.grpcTransport.close()
}

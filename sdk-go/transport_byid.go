package outrig

import (
	"context"
	"errors"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	"github.com/outrig/outrig/api/shm"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// idCaller carries encoded unary calls by method id (the ids of api/shm,
// SPEC.md §7): the shared-memory rings and the gRPC Multiplex streams.
// callID returns the encoded response, or an error that status.FromError
// understands (or errUseUnary). Safe for concurrent use; close is called
// once.
type idCaller interface {
	callID(ctx context.Context, method uint16, req []byte) ([]byte, error)
	close()
}

// errUseUnary: the carrier is not available from this sidecar (it has no
// Multiplex service); the call goes as a unary gRPC call instead.
var errUseUnary = errors.New("outrig: carrier not served; use unary gRPC")

// byIDTransport sends the unary calls through an idCaller and the streams
// (Subscribe, SubscribeBinding, Serve) over the gRPC transport it wraps.
type byIDTransport struct {
	*grpcTransport
	c idCaller
}

func (t *byIDTransport) close() error {
	t.c.close()
	return t.grpcTransport.close()
}

// callByID encodes req, calls method through t.c (or as a unary gRPC call
// when the carrier says errUseUnary) and decodes the answer into resp.
func callByID[Resp proto.Message](t *byIDTransport, ctx context.Context, op string, method uint16, req proto.Message, resp Resp) (Resp, error) {
	var zero Resp
	b, err := proto.Marshal(req)
	if err != nil {
		return zero, newError(op, codes.InvalidArgument, err.Error())
	}
	out, err := t.c.callID(ctx, method, b)
	if errors.Is(err, errUseUnary) {
		full, _ := shm.FullMethod(method)
		var tr metadata.MD
		if err := t.cc.Invoke(ctx, full, req, resp, grpc.Trailer(&tr)); err != nil {
			return zero, fromRPC(op, err, tr)
		}
		return resp, nil
	}
	if err != nil {
		return zero, fromRPC(op, err, nil)
	}
	if err := proto.Unmarshal(out, resp); err != nil {
		return zero, newError(op, codes.Internal, "malformed answer: "+err.Error())
	}
	return resp, nil
}

func (t *byIDTransport) invoke(ctx context.Context, req *runtimev1.InvokeRequest) (*runtimev1.InvokeResponse, error) {
	return callByID(t, ctx, "Invoke", shm.MethodInvoke, req, &runtimev1.InvokeResponse{})
}

func (t *byIDTransport) getState(ctx context.Context, req *runtimev1.GetStateRequest) (*runtimev1.GetStateResponse, error) {
	return callByID(t, ctx, "GetState", shm.MethodGetState, req, &runtimev1.GetStateResponse{})
}

func (t *byIDTransport) getBulkState(ctx context.Context, req *runtimev1.GetBulkStateRequest) (*runtimev1.GetBulkStateResponse, error) {
	return callByID(t, ctx, "GetBulkState", shm.MethodGetBulkState, req, &runtimev1.GetBulkStateResponse{})
}

func (t *byIDTransport) saveState(ctx context.Context, req *runtimev1.SaveStateRequest) error {
	_, err := callByID(t, ctx, "SaveState", shm.MethodSaveState, req, &runtimev1.SaveStateResponse{})
	return err
}

func (t *byIDTransport) deleteState(ctx context.Context, req *runtimev1.DeleteStateRequest) error {
	_, err := callByID(t, ctx, "DeleteState", shm.MethodDeleteState, req, &runtimev1.DeleteStateResponse{})
	return err
}

func (t *byIDTransport) deleteBulkState(ctx context.Context, req *runtimev1.DeleteBulkStateRequest) error {
	_, err := callByID(t, ctx, "DeleteBulkState", shm.MethodDeleteBulkState, req, &runtimev1.DeleteBulkStateResponse{})
	return err
}

func (t *byIDTransport) executeStateTransaction(ctx context.Context, req *runtimev1.ExecuteStateTransactionRequest) error {
	_, err := callByID(t, ctx, "ExecuteStateTransaction", shm.MethodExecuteStateTransaction, req, &runtimev1.ExecuteStateTransactionResponse{})
	return err
}

func (t *byIDTransport) publish(ctx context.Context, req *runtimev1.PublishRequest) error {
	_, err := callByID(t, ctx, "Publish", shm.MethodPublish, req, &runtimev1.PublishResponse{})
	return err
}

func (t *byIDTransport) bulkPublish(ctx context.Context, req *runtimev1.BulkPublishRequest) (*runtimev1.BulkPublishResponse, error) {
	return callByID(t, ctx, "BulkPublish", shm.MethodBulkPublish, req, &runtimev1.BulkPublishResponse{})
}

func (t *byIDTransport) invokeBinding(ctx context.Context, req *runtimev1.InvokeBindingRequest) (*runtimev1.InvokeBindingResponse, error) {
	return callByID(t, ctx, "InvokeBinding", shm.MethodInvokeBinding, req, &runtimev1.InvokeBindingResponse{})
}

func (t *byIDTransport) getMetadata(ctx context.Context) (*runtimev1.GetMetadataResponse, error) {
	return callByID(t, ctx, "GetMetadata", shm.MethodGetMetadata, &runtimev1.GetMetadataRequest{}, &runtimev1.GetMetadataResponse{})
}

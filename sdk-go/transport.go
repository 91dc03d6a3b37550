package outrig

import (
	"context"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
)

// transport carries the Runtime API between the Client and its sidecar. The
// typed Client methods build request messages and call a transport; they
// never touch gRPC directly, so another carrier (the shared-memory rings of
// api/shm) can replace the gRPC one without changing the public API.
//
// Contract:
//   - Every method is safe for concurrent use by many goroutines.
//   - Unary methods return either a response or an error that is an *Error
//     (code, server message, retry-after hint); never both nil.
//   - Stream openers return a stream owned by the caller: one goroutine may
//     call Recv while another calls Send (not two Sends at once); the stream
//     ends when ctx is cancelled or Recv returns an error. Errors from Send
//     and Recv are raw and are converted by the caller with fromRPC.
//   - close is called once, by Client.Close; afterwards every call fails.
type transport interface {
	invoke(ctx context.Context, req *runtimev1.InvokeRequest) (*runtimev1.InvokeResponse, error)

	getState(ctx context.Context, req *runtimev1.GetStateRequest) (*runtimev1.GetStateResponse, error)
	getBulkState(ctx context.Context, req *runtimev1.GetBulkStateRequest) (*runtimev1.GetBulkStateResponse, error)
	saveState(ctx context.Context, req *runtimev1.SaveStateRequest) error
	deleteState(ctx context.Context, req *runtimev1.DeleteStateRequest) error
	deleteBulkState(ctx context.Context, req *runtimev1.DeleteBulkStateRequest) error
	executeStateTransaction(ctx context.Context, req *runtimev1.ExecuteStateTransactionRequest) error

	publish(ctx context.Context, req *runtimev1.PublishRequest) error
	bulkPublish(ctx context.Context, req *runtimev1.BulkPublishRequest) (*runtimev1.BulkPublishResponse, error)
	invokeBinding(ctx context.Context, req *runtimev1.InvokeBindingRequest) (*runtimev1.InvokeBindingResponse, error)
	getMetadata(ctx context.Context) (*runtimev1.GetMetadataResponse, error)

	subscribe(ctx context.Context) (bidiStream[runtimev1.SubscribeRequest, runtimev1.SubscribeResponse], error)
	subscribeBinding(ctx context.Context) (bidiStream[runtimev1.SubscribeBindingRequest, runtimev1.SubscribeBindingResponse], error)
	serve(ctx context.Context) (bidiStream[runtimev1.ServeRequest, runtimev1.ServeResponse], error)

	close() error
}

// bidiStream is the client side of one bidirectional stream.
type bidiStream[Req, Resp any] interface {
	Send(*Req) error
	Recv() (*Resp, error)
	CloseSend() error
}

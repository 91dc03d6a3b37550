// Package shm is the shared-memory transport of the app API: it serves the
// unary Runtime methods over api/shm rings (one segment per app
// connection) by calling the same service layer as the gRPC transport. The
// streaming methods (Subscribe, SubscribeBinding, Serve) stay on gRPC.
//
// Errors cross as gRPC statuses from the same edge table; the retry-after
// hint travels in the status message only (the frame carries a
// google.rpc.Status without trailers).
package shm

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	apishm "github.com/outrig/outrig/api/shm"

	"github.com/outrig/outrig/service"
	"github.com/outrig/outrig/telemetry"
	"github.com/outrig/outrig/transport/edge"
)

// Handler adapts the service to api/shm. Safe for concurrent use.
type Handler struct {
	svc     *service.Service
	metrics *telemetry.Metrics
}

// NewHandler returns the shm handler of svc; m may be nil.
func NewHandler(svc *service.Service, m *telemetry.Metrics) *Handler {
	return &Handler{svc: svc, metrics: m}
}

// Handle implements apishm.Handler.
func (h *Handler) Handle(ctx context.Context, method uint16, req []byte) ([]byte, error) {
	peer, _ := apishm.PeerFromContext(ctx)
	ctx = service.WithAppID(ctx, peer.AppID)
	start := time.Now()
	out, name, component, err := h.dispatch(ctx, method, req)
	st, _ := edge.Status(err)
	if h.metrics != nil {
		h.metrics.API(h.svc.MetricsApp(peer.AppID), name, component, st.Code().String(), time.Since(start))
	}
	if err != nil {
		return nil, st.Err()
	}
	return out, nil
}

func (h *Handler) dispatch(ctx context.Context, method uint16, req []byte) ([]byte, string, string, error) {
	s := h.svc
	switch method {
	case apishm.MethodGetState:
		return unary(ctx, req, "GetState", &runtimev1.GetStateRequest{}, (*runtimev1.GetStateRequest).GetStoreName, s.GetState)
	case apishm.MethodSaveState:
		return unary(ctx, req, "SaveState", &runtimev1.SaveStateRequest{}, (*runtimev1.SaveStateRequest).GetStoreName, s.SaveState)
	case apishm.MethodDeleteState:
		return unary(ctx, req, "DeleteState", &runtimev1.DeleteStateRequest{}, (*runtimev1.DeleteStateRequest).GetStoreName, s.DeleteState)
	case apishm.MethodGetBulkState:
		return unary(ctx, req, "GetBulkState", &runtimev1.GetBulkStateRequest{}, (*runtimev1.GetBulkStateRequest).GetStoreName, s.GetBulkState)
	case apishm.MethodDeleteBulkState:
		return unary(ctx, req, "DeleteBulkState", &runtimev1.DeleteBulkStateRequest{}, (*runtimev1.DeleteBulkStateRequest).GetStoreName, s.DeleteBulkState)
	case apishm.MethodExecuteStateTransaction:
		return unary(ctx, req, "ExecuteStateTransaction", &runtimev1.ExecuteStateTransactionRequest{}, (*runtimev1.ExecuteStateTransactionRequest).GetStoreName, s.ExecuteStateTransaction)
	case apishm.MethodPublish:
		return unary(ctx, req, "Publish", &runtimev1.PublishRequest{}, (*runtimev1.PublishRequest).GetPubsubName, s.Publish)
	case apishm.MethodBulkPublish:
		return unary(ctx, req, "BulkPublish", &runtimev1.BulkPublishRequest{}, (*runtimev1.BulkPublishRequest).GetPubsubName, s.BulkPublish)
	case apishm.MethodInvoke:
		return unary(ctx, req, "Invoke", &runtimev1.InvokeRequest{}, (*runtimev1.InvokeRequest).GetAppId, s.Invoke)
	case apishm.MethodInvokeBinding:
		return unary(ctx, req, "InvokeBinding", &runtimev1.InvokeBindingRequest{}, (*runtimev1.InvokeBindingRequest).GetName, s.InvokeBinding)
	case apishm.MethodGetMetadata:
		return unary(ctx, req, "GetMetadata", &runtimev1.GetMetadataRequest{}, func(*runtimev1.GetMetadataRequest) string { return "" }, s.GetMetadata)
	}
	return nil, "unknown", "", status.Error(codes.Unimplemented, fmt.Sprintf("shm method id %d is not served", method))
}

// unary decodes req into in, calls f and encodes its answer.
func unary[Req, Resp proto.Message](ctx context.Context, raw []byte, name string, in Req, component func(Req) string,
	f func(context.Context, Req) (Resp, error)) ([]byte, string, string, error) {
	if err := proto.Unmarshal(raw, in); err != nil {
		return nil, name, "", status.Error(codes.InvalidArgument, fmt.Sprintf("%s: malformed request: %v", name, err))
	}
	out, err := f(ctx, in)
	if err != nil {
		return nil, name, component(in), err
	}
	b, err := proto.Marshal(out)
	if err != nil {
		return nil, name, component(in), fmt.Errorf("%s: encode answer: %w", name, err)
	}
	return b, name, component(in), nil
}

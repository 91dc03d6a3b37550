// Package calls serves the unary methods of the Runtime API by method id
// (the ids of api/shm, SPEC.md §7) for the carriers that are not plain
// unary gRPC: the shared-memory rings (transport/shm) and the gRPC
// Multiplex stream (transport/grpc). A call is decoded, passed to the same
// service layer as the unary gRPC methods, encoded, counted in the same
// metrics, and its error converted at the edge by the same table.
package calls

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	apishm "github.com/outrig/outrig/api/shm"

	"github.com/outrig/outrig/internal/busypoll"
	"github.com/outrig/outrig/service"
	"github.com/outrig/outrig/telemetry"
	"github.com/outrig/outrig/transport/edge"
)

// Dispatcher runs calls by method id. Safe for concurrent use.
type Dispatcher struct {
	svc     *service.Service
	metrics *telemetry.Metrics
	gate    *busypoll.Gate
	polls   bool // calls' backend reads may poll (Polling)
}

// New returns the dispatcher of svc; m and gate (which counts the calls in
// flight, so that backend reads poll only for a lone call) may be nil.
func New(svc *service.Service, m *telemetry.Metrics, gate *busypoll.Gate) *Dispatcher {
	return &Dispatcher{svc: svc, metrics: m, gate: gate}
}

// Polling returns a dispatcher of the same service whose calls let their
// backend reads poll while the gate allows it (busypoll.Gate.Enter): the one
// the shared-memory server uses.
func (d *Dispatcher) Polling() *Dispatcher {
	p := *d
	p.polls = true
	return &p
}

// Call runs method for the app appID ("" in pod mode: the sidecar's app)
// with the encoded request req, and returns the encoded response, or a gRPC
// status error from the edge table.
func (d *Dispatcher) Call(ctx context.Context, appID string, method uint16, req []byte) ([]byte, error) {
	d.gate.Enter(d.polls)
	defer d.gate.Leave(d.polls)
	ctx = service.WithAppID(ctx, appID)
	start := time.Now()
	out, name, component, err := d.dispatch(ctx, method, req)
	return answer(d.metrics, d.svc.MetricsApp(appID), name, component, start, out, err)
}

// CallAsync starts method without waiting for its answer when the service
// can (today GetState on a store that reads asynchronously:
// service.GetStateAsync) and returns true; done then gets the encoded
// response or the edge table's error, once, on any goroutine, possibly
// before CallAsync returns, and the call is counted in the metrics as Call
// counts it. false means declined, done not called: run Call instead (a
// declined request is decoded again there). done must not block.
func (d *Dispatcher) CallAsync(ctx context.Context, appID string, method uint16, req []byte, done func([]byte, error)) bool {
	if method != apishm.MethodGetState {
		return false
	}
	in := &runtimev1.GetStateRequest{}
	if err := proto.Unmarshal(req, in); err != nil {
		return false
	}
	ctx = service.WithAppID(ctx, appID)
	start := time.Now()
	d.gate.Enter(d.polls)
	ok := d.svc.GetStateAsync(ctx, in, func(resp *runtimev1.GetStateResponse, err error) {
		d.gate.Leave(d.polls)
		var out []byte
		if err == nil {
			if out, err = proto.Marshal(resp); err != nil {
				err = fmt.Errorf("GetState: encode answer: %w", err)
			}
		}
		done(answer(d.metrics, d.svc.MetricsApp(appID), "GetState", in.GetStoreName(), start, out, err))
	})
	if !ok {
		d.gate.Leave(d.polls)
	}
	return ok
}

// answer counts a call in m (may be nil) under app, name and component, and
// returns its encoded response or its error converted by the edge table.
func answer(m *telemetry.Metrics, app, name, component string, start time.Time, out []byte, err error) ([]byte, error) {
	st, _ := edge.Status(err)
	if m != nil {
		m.API(app, name, component, st.Code().String(), time.Since(start))
	}
	if err != nil {
		return nil, st.Err()
	}
	return out, nil
}

func (d *Dispatcher) dispatch(ctx context.Context, method uint16, req []byte) ([]byte, string, string, error) {
	s := d.svc
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
	return nil, "unknown", "", status.Error(codes.Unimplemented, fmt.Sprintf("method id %d is not served", method))
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

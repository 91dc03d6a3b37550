package grpc

import (
	"context"
	"time"

	"google.golang.org/grpc"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	apishm "github.com/outrig/outrig/api/shm"

	"github.com/outrig/outrig/transport/calls"
)

// multiplex serves outrig.runtime.v1.Multiplex: unary calls on long-lived
// streams. Each stream's calls run one after the other on the stream's own
// goroutine (the client opens a stream per concurrent call), so a call costs
// a message each way and no goroutine: the handler's stack stays grown from
// one call to the next.
type multiplex struct {
	runtimev1.UnimplementedMultiplexServer
	calls *calls.Dispatcher
}

// RegisterMultiplex serves the Multiplex service on s (the app API server)
// with d's calls.
func RegisterMultiplex(s grpc.ServiceRegistrar, d *calls.Dispatcher) {
	runtimev1.RegisterMultiplexServer(s, &multiplex{calls: d})
}

func (m *multiplex) Calls(stream runtimev1.Multiplex_CallsServer) error {
	ctx := stream.Context()
	app := appID(ctx)
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil // the client closed or cancelled the stream
		}
		callCtx, cancel := ctx, context.CancelFunc(nil)
		if t := req.GetTimeoutUs(); t > 0 {
			callCtx, cancel = context.WithTimeout(ctx, time.Duration(t)*time.Microsecond)
		}
		out, err := m.calls.Call(callCtx, app, uint16(min(req.GetMethod(), 1<<16-1)), req.GetPayload())
		if cancel != nil {
			cancel()
		}
		resp := &runtimev1.CallFrame{Id: req.GetId()}
		if err != nil {
			resp.Status = apishm.EncodeStatus(err)
		} else {
			resp.Payload = out
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

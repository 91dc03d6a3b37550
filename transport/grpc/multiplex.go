package grpc

import (
	"context"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
	calls    Caller
	act      *Activity
	draining atomic.Bool
}

// Multiplex is the registered Multiplex service.
type Multiplex struct{ m *multiplex }

// Caller runs one call by method id: transport/calls.Dispatcher (the app
// API's Runtime methods) or transport/calls.Internal (sidecar to sidecar).
type Caller interface {
	Call(ctx context.Context, appID string, method uint16, req []byte) ([]byte, error)
}

var (
	_ Caller = (*calls.Dispatcher)(nil)
	_ Caller = (*calls.Internal)(nil)
)

// RegisterMultiplex serves the Multiplex service on s (the app API server or
// the internal server) with d's calls; act (may be nil) counts each call
// while it runs.
func RegisterMultiplex(s grpc.ServiceRegistrar, d Caller, act *Activity) Multiplex {
	m := &multiplex{calls: d, act: act}
	runtimev1.RegisterMultiplexServer(s, m)
	return Multiplex{m: m}
}

// Drain stops taking calls: a call already running finishes, every later
// one on any stream is answered UNAVAILABLE without running (as a unary
// call is refused once the server stops accepting), so that clients retry
// elsewhere. Call it when the sidecar starts shutting down, before the gRPC
// server's graceful stop.
func (x Multiplex) Drain() { x.m.draining.Store(true) }

// errDraining answers the calls that arrive after Drain.
var errDraining = status.Error(codes.Unavailable, "sidecar shutting down")

func (m *multiplex) Calls(stream runtimev1.Multiplex_CallsServer) error {
	ctx := stream.Context()
	app := appID(ctx)
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil // the client closed or cancelled the stream
		}
		callCtx, cancel := ctx, context.CancelFunc(func() {})
		if t := req.GetTimeoutUs(); t > 0 {
			callCtx, cancel = context.WithTimeout(ctx, time.Duration(t)*time.Microsecond)
		}
		var out []byte
		m.act.begin()
		if m.draining.Load() {
			err = errDraining
		} else {
			out, err = m.calls.Call(callCtx, app, uint16(min(req.GetMethod(), 1<<16-1)), req.GetPayload())
		}
		cancel()
		resp := &runtimev1.CallFrame{Id: req.GetId()}
		if err != nil {
			resp.Status = apishm.EncodeStatus(err)
		} else {
			resp.Payload = out
		}
		err = stream.Send(resp)
		m.act.end() // answered: the stream is idle again
		if err != nil {
			return err
		}
	}
}

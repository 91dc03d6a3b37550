package calls

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	"github.com/outrig/outrig/api/mux"

	"github.com/outrig/outrig/internal/busypoll"
	"github.com/outrig/outrig/service"
	"github.com/outrig/outrig/telemetry"
)

// Internal runs the sidecar-to-sidecar call (Internal.CallLocal, method id
// mux.MethodCallLocal) arriving on the internal listener's Multiplex
// streams: decoded, passed to the same service as the unary method, counted
// in the same metrics and its error converted by the same table. Safe for
// concurrent use.
type Internal struct {
	in      *service.Internal
	metrics *telemetry.Metrics
	gate    *busypoll.Gate
}

// NewInternal returns the dispatcher of in; m and gate may be nil (see New).
func NewInternal(in *service.Internal, m *telemetry.Metrics, gate *busypoll.Gate) *Internal {
	return &Internal{in: in, metrics: m, gate: gate}
}

// Call runs method with the encoded request req (appID is not used: the
// caller's app id is in the request) and returns the encoded response, or a
// gRPC status error from the edge table.
func (d *Internal) Call(ctx context.Context, _ string, method uint16, req []byte) ([]byte, error) {
	d.gate.Enter(false)
	defer d.gate.Leave(false)
	start := time.Now()
	var (
		out             []byte
		name, component = "unknown", ""
		err             error
	)
	if method == mux.MethodCallLocal {
		out, name, component, err = unary(ctx, req, "CallLocal", &runtimev1.InternalInvokeRequest{},
			(*runtimev1.InternalInvokeRequest).GetTargetAppId, d.in.CallLocal)
	} else {
		err = status.Error(codes.Unimplemented, fmt.Sprintf("method id %d is not served on the internal listener", method))
	}
	return answer(d.metrics, "", name, component, start, out, err)
}

package outrig

import (
	"context"
	"errors"

	"github.com/outrig/outrig/api/mux"
)

// WithUnaryRPC sends every unary call as its own gRPC call instead of on
// the sidecar's Multiplex streams (the default over gRPC). Both carry the
// same messages with the same semantics; the streams cost about half the
// latency and a quarter of the CPU per call on a Unix socket. Use it to
// compare, or when a proxy between app and sidecar only passes unary calls.
func WithUnaryRPC() Option {
	return func(c *clientConfig) { c.unary = true }
}

// muxCaller carries the unary calls on the sidecar's Multiplex streams
// (api/mux); a sidecar without the service makes every call errUseUnary.
type muxCaller struct{ c *mux.Caller }

func newMuxCaller(g *grpcTransport) muxCaller { return muxCaller{c: mux.New(g.cc)} }

func (m muxCaller) callID(ctx context.Context, method uint16, req []byte) ([]byte, error) {
	out, err := m.c.Call(ctx, uint32(method), req)
	if errors.Is(err, mux.ErrNotServed) {
		return nil, errUseUnary
	}
	return out, err
}

func (m muxCaller) close() { m.c.Close() }

// Package shm is the shared-memory transport of the app API: it serves the
// unary Runtime methods over api/shm rings (one segment per app
// connection) through transport/calls, the same service layer, metrics and
// error table as the gRPC transport. The streaming methods (Subscribe,
// SubscribeBinding, Serve) stay on gRPC.
//
// Errors cross as gRPC statuses; the retry-after hint travels as a
// google.rpc.RetryInfo detail (the frame carries a google.rpc.Status
// without trailers).
package shm

import (
	"context"

	apishm "github.com/outrig/outrig/api/shm"

	"github.com/outrig/outrig/transport/calls"
)

// Handler adapts the call dispatcher to api/shm. Safe for concurrent use.
type Handler struct {
	calls *calls.Dispatcher
}

// NewHandler returns the shm handler serving d's calls.
func NewHandler(d *calls.Dispatcher) *Handler {
	return &Handler{calls: d}
}

// Handle implements apishm.Handler: the caller is the app the connection's
// handshake named.
func (h *Handler) Handle(ctx context.Context, method uint16, req []byte) ([]byte, error) {
	peer, _ := apishm.PeerFromContext(ctx)
	return h.calls.Call(ctx, peer.AppID, method, req)
}

// HandleAsync implements apishm.AsyncHandler: the calls the dispatcher can
// start without waiting (calls.Dispatcher.CallAsync) are answered by the
// goroutine that completes them.
func (h *Handler) HandleAsync(ctx context.Context, method uint16, req []byte, done func([]byte, error)) bool {
	peer, _ := apishm.PeerFromContext(ctx)
	return h.calls.CallAsync(ctx, peer.AppID, method, req, done)
}

var _ apishm.AsyncHandler = (*Handler)(nil)

// Package invoke is the service-invocation building block: the caller side
// (resolve the callee's endpoints, pick one, call its sidecar) and the
// callee side (hand the call to the app through its Serve stream or its
// HTTP/gRPC app port).
package invoke

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outrig/outrig/errkind"
)

// ServeStream is the sidecar's end of one app Serve stream: Call sends an
// Invocation and waits for the InvocationReply with the same id, which the
// receive loop hands to Reply. Safe for concurrent use.
type ServeStream struct {
	send   func(*runtimev1.Invocation) error
	sendMu sync.Mutex
	nextID atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]chan *runtimev1.InvocationReply
	closed  bool
	done    chan struct{}
}

// NewServeStream returns a ServeStream sending with send.
func NewServeStream(send func(*runtimev1.Invocation) error) *ServeStream {
	return &ServeStream{send: send, pending: map[uint64]chan *runtimev1.InvocationReply{}, done: make(chan struct{})}
}

// errStreamClosed marks a stream that went away; the caller may use another.
var errStreamClosed = errors.New("serve stream closed")

// Call delivers inv (its Id is assigned here) and returns the app's reply.
func (s *ServeStream) Call(ctx context.Context, inv *runtimev1.Invocation) (*runtimev1.InvokeResponse, error) {
	id := s.nextID.Add(1)
	inv.Id = id
	ch := make(chan *runtimev1.InvocationReply, 1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errStreamClosed
	}
	s.pending[id] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
	}()
	s.sendMu.Lock()
	err := s.send(inv)
	s.sendMu.Unlock()
	if err != nil {
		return nil, errStreamClosed
	}
	select {
	case r := <-ch:
		if r.Code != 0 {
			return nil, fmt.Errorf("app answered %s: %w", codes.Code(r.Code), status.Error(codes.Code(r.Code), r.Message))
		}
		return &runtimev1.InvokeResponse{Data: r.Data, ContentType: r.ContentType, Metadata: r.Metadata}, nil
	case <-s.done:
		return nil, fmt.Errorf("app's serve stream closed during the call: %w", errkind.ErrUnavailable)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Reply hands one reply to its caller. A reply that comes after its caller
// stopped waiting (deadline, cancellation) is dropped: the stream must not
// fail because a handler was slow. A reply for an id never sent is an
// INVALID_ARGUMENT error.
func (s *ServeStream) Reply(r *runtimev1.InvocationReply) error {
	s.mu.Lock()
	ch, ok := s.pending[r.Id]
	delete(s.pending, r.Id)
	s.mu.Unlock()
	if !ok {
		if r.Id != 0 && r.Id <= s.nextID.Load() {
			return nil // late: ids are issued in order, so this one was sent
		}
		return errkind.InvalidArgument("reply.id", "no invocation %d is awaiting a reply", r.Id)
	}
	ch <- r
	return nil
}

// Close fails calls in flight and future calls.
func (s *ServeStream) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
}

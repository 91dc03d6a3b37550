// Package mux is the client of outrig.runtime.v1.Multiplex
// (multiplex.proto): calls named by a method id, each sent as one CallFrame
// on a long-lived gRPC stream and answered by one. The Go SDK carries the
// Runtime methods on it (method ids of api/shm, SPEC.md §7); sidecars carry
// Internal.CallLocal to each other (MethodCallLocal).
package mux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	"github.com/outrig/outrig/api/shm"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// MethodCallLocal is the method id of Internal.CallLocal (request
// InternalInvokeRequest, response InvokeResponse) on the Multiplex service
// of a sidecar's internal listener. The app listener's Multiplex carries the
// Runtime methods by their api/shm ids instead.
const MethodCallLocal = 1

// ErrNotServed: the server has no Multiplex service (an older sidecar); the
// caller makes the call another way (a unary gRPC call).
var ErrNotServed = errors.New("mux: Multiplex not served; use unary gRPC")

// Caller carries calls on the outrig.runtime.v1.Multiplex streams of one
// connection: a caller takes an idle stream from the pool (or opens one), sends its
// request, reads the answer itself — no goroutine hand-off — and puts the
// stream back. Concurrent callers use separate streams, so the pool grows
// to the number of calls in flight (at most maxIdleStreams are kept idle).
//
// A caller that gives up (its context ends) cancels its stream: the sidecar
// cancels the call in progress, and the stream is not reused. A stream found
// broken when sending (the sidecar restarted) is dropped and the call tries
// a fresh one, once; a request that was sent is never sent again.
//
// When the sidecar has no Multiplex service (an older sidecar), the first
// call learns it and every call returns ErrNotServed.
//
// Safe for concurrent use; Close cancels the idle streams.
type Caller struct {
	client runtimev1.MultiplexClient

	mu     sync.Mutex
	idle   []*stream
	closed bool

	nextID atomic.Uint64
	absent atomic.Bool // the sidecar answered UNIMPLEMENTED to Calls
}

type stream struct {
	s      runtimev1.Multiplex_CallsClient
	cancel context.CancelFunc
}

// maxIdleStreams bounds the streams kept open between calls.
const maxIdleStreams = 64

// New returns a Caller on cc's Multiplex service.
func New(cc grpc.ClientConnInterface) *Caller {
	return &Caller{client: runtimev1.NewMultiplexClient(cc)}
}

// Call sends the encoded request req of method (a method id) and returns
// the encoded response, or an error status.FromError understands, or
// ErrNotServed. ctx's deadline travels with the call and bounds it on the
// server.
func (m *Caller) Call(ctx context.Context, method uint32, req []byte) ([]byte, error) {
	if m.absent.Load() {
		return nil, ErrNotServed
	}
	frame := &runtimev1.CallFrame{Id: m.nextID.Add(1), Method: method, Payload: req}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, status.FromContextError(err).Err()
		}
		if dl, ok := ctx.Deadline(); ok {
			frame.TimeoutUs = max(time.Until(dl).Microseconds(), 1)
		}
		st, reused, err := m.take(ctx)
		if err != nil {
			return nil, err
		}
		if err := st.s.Send(frame); err != nil {
			err = st.failure(err)
			if reused && attempt == 0 {
				continue // a stream broken while idle; the request did not leave
			}
			return nil, m.streamErr(ctx, err)
		}
		stop := context.AfterFunc(ctx, st.cancel)
		resp, err := st.s.Recv()
		if !stop() {
			st.cancel()
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		if err != nil {
			st.cancel()
			return nil, m.streamErr(ctx, err)
		}
		if resp.GetId() != frame.GetId() {
			st.cancel()
			return nil, status.Error(codes.Internal, fmt.Sprintf("multiplex stream answered call %d with call %d", frame.GetId(), resp.GetId()))
		}
		m.put(st)
		if len(resp.GetStatus()) > 0 {
			return nil, shm.DecodeStatus(resp.GetStatus())
		}
		return resp.GetPayload(), nil
	}
}

// take returns an idle stream (reused) or opens one, bounded by ctx.
func (m *Caller) take(ctx context.Context) (st *stream, reused bool, err error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, false, status.Error(codes.Canceled, "client closed")
	}
	if n := len(m.idle); n > 0 {
		st = m.idle[n-1]
		m.idle[n-1] = nil
		m.idle = m.idle[:n-1]
		m.mu.Unlock()
		return st, true, nil
	}
	m.mu.Unlock()
	// The stream outlives this call, so its context is not ctx; ctx only
	// bounds the opening (which waits while the connection is being made).
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	s, err := m.client.Calls(sctx)
	if !stop() {
		cancel()
		return nil, false, status.FromContextError(ctx.Err()).Err()
	}
	if err != nil {
		cancel()
		return nil, false, err
	}
	return &stream{s: s, cancel: cancel}, false, nil
}

// put keeps st for a later call, or closes it when enough are idle.
func (m *Caller) put(st *stream) {
	m.mu.Lock()
	if !m.closed && len(m.idle) < maxIdleStreams {
		m.idle = append(m.idle, st)
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	st.cancel()
}

// failure returns the stream's real error after a failed Send (gRPC reports
// io.EOF there and the status on Recv) and cancels the stream.
func (st *stream) failure(err error) error {
	if errors.Is(err, io.EOF) {
		if _, rerr := st.s.Recv(); rerr != nil {
			err = rerr
		}
	}
	st.cancel()
	return err
}

// streamErr turns a stream error into the call's error; UNIMPLEMENTED means
// the sidecar has no Multiplex service.
func (m *Caller) streamErr(ctx context.Context, err error) error {
	if status.Code(err) == codes.Unimplemented {
		m.absent.Store(true)
		m.Close()
		return ErrNotServed
	}
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	if errors.Is(err, io.EOF) {
		return status.Error(codes.Unavailable, "multiplex stream ended")
	}
	return err
}

// Close cancels the idle streams; later calls fail. Safe to call more than
// once.
func (m *Caller) Close() {
	m.mu.Lock()
	idle := m.idle
	m.idle = nil
	m.closed = true
	m.mu.Unlock()
	for _, st := range idle {
		st.cancel()
	}
}

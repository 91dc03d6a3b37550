package grpc

import "sync/atomic"

// Activity counts what the app API server is doing: unary calls and
// streams in flight — except Multiplex streams, which count only while they
// run a call, since an SDK keeps them open between calls. Once the server
// stops taking new work (Multiplex drained, graceful stop begun), Idle
// means every accepted call has finished and only idle Multiplex streams
// are left, so the server can stop at once instead of waiting out the
// shutdown grace for streams that never end by themselves.
//
// Safe for concurrent use; the zero value is ready. A nil *Activity counts
// nothing.
type Activity struct{ n atomic.Int64 }

// Idle reports that no call or counted stream is in flight.
func (a *Activity) Idle() bool { return a.n.Load() == 0 }

func (a *Activity) begin() {
	if a != nil {
		a.n.Add(1)
	}
}

func (a *Activity) end() {
	if a != nil {
		a.n.Add(-1)
	}
}

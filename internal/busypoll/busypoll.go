// Package busypoll lets a sidecar that serves one call at a time wait for
// its backend's reply by polling the socket instead of sleeping in the
// kernel until the reply arrives.
//
// Why: a thread that sleeps (epoll_wait, futex) costs 20–60 µs to wake on a
// 2-vCPU VM (docs/benchmarks.md). Direct access to Redis pays that once per
// call, in the app; a sidecar in the middle pays it again for the Redis
// reply and for the app's next request. While several calls are in flight
// the sidecar's threads are busy anyway and nobody sleeps long, so polling
// only pays for a lone caller — and costs up to a core while that caller
// calls back to back. The Gate counts the calls in flight and grants polling
// only while there is at most one and none have overlapped for Quiet: under
// load the count drops to one now and then, and polling then would take the
// CPU that the backend and the callers need.
//
// Lifecycle: a Gate is built in main from the sidecar's --busy-poll flag and
// shared by the call dispatchers (Enter, Leave) and the connections it
// wraps (Wrap); it has no resources to release. A nil *Gate never polls.
// All methods are safe for concurrent use.
package busypoll

import (
	"net"
	"sync/atomic"
	"time"
)

// Quiet is how long after two calls overlapped the gate grants no polling.
const Quiet = 10 * time.Millisecond

// Gate decides when a read may poll. See the package comment.
type Gate struct {
	budget    time.Duration
	calls     atomic.Int64
	pollers   atomic.Int64 // calls entered with polls
	overlapAt atomic.Int64 // UnixNano of the last Enter that found another call in flight
	polls     atomic.Int64
}

// Polls counts the reads made while the gate granted polling (for tests
// and metrics).
func (g *Gate) Polls() int64 {
	if g == nil {
		return 0
	}
	return g.polls.Load()
}

// NewGate returns a gate that lets a read poll for up to budget before it
// sleeps; budget <= 0 never polls.
func NewGate(budget time.Duration) *Gate { return &Gate{budget: max(budget, 0)} }

// Max is the budget the gate was built with (0: off).
func (g *Gate) Max() time.Duration {
	if g == nil {
		return 0
	}
	return g.budget
}

// Enter counts a call in flight until the matching Leave. polls says
// whether the call's backend reads may poll: true only for calls whose
// caller waits without sleeping too (shared memory); over gRPC the caller's
// reply passes through gRPC's own goroutines, which sleep anyway, so
// polling there measured no gain (docs/benchmarks.md).
func (g *Gate) Enter(polls bool) {
	if g == nil {
		return
	}
	if polls {
		g.pollers.Add(1)
	}
	if g.calls.Add(1) > 1 {
		g.overlapAt.Store(time.Now().UnixNano())
	}
}

// Leave ends a call counted by Enter with the same polls.
func (g *Gate) Leave(polls bool) {
	if g == nil {
		return
	}
	g.calls.Add(-1)
	if polls {
		g.pollers.Add(-1)
	}
}

// Budget is how long a read starting now may poll: the gate's budget while
// the one call in flight may poll and no calls have overlapped for Quiet,
// else 0.
func (g *Gate) Budget() time.Duration {
	if g == nil || g.budget == 0 || g.calls.Load() != 1 || g.pollers.Load() != 1 || !g.quiet() {
		return 0
	}
	return g.budget
}

// Lone reports whether at most one call is in flight and none have
// overlapped for Quiet, whatever they are (the shared-memory server's
// ServerOptions.LoneOnlyIf).
func (g *Gate) Lone() bool { return g != nil && g.calls.Load() <= 1 && g.quiet() }

func (g *Gate) quiet() bool { return time.Now().UnixNano()-g.overlapAt.Load() > int64(Quiet) }

// Wrap returns c with reads that poll while the gate allows it, when c is a
// TCP or Unix socket connection; any other connection (TLS, say) is
// returned unchanged, as is c when the gate is off.
func (g *Gate) Wrap(c net.Conn) net.Conn {
	if g.Max() == 0 {
		return c
	}
	return wrap(c, g)
}

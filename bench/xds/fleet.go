package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"

	"github.com/outrig/outrig/xds/resource"
)

// change is one measured change: the probe that recognises it and, per
// subscriber, when it was first seen.
type change struct {
	id        int64
	start     time.Time
	probe     probe
	lat       []atomic.Int64 // nanoseconds, by subscriber; 0 = not seen yet
	remaining atomic.Int64
	done      chan struct{} // closed when every subscriber saw it
}

// fleet is N simulated sidecars and what they observe. Subscribers run in
// their own goroutines and report through observe.
type fleet struct {
	n      int
	cur    atomic.Pointer[change]
	bytes  byteCounter // payload bytes received by every subscriber
	synced atomic.Int64
	failed atomic.Int64 // streams that ended with an error while running

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	closers []func()
}

func newFleet(n int) *fleet {
	ctx, cancel := context.WithCancel(context.Background())
	return &fleet{n: n, ctx: ctx, cancel: cancel}
}

// subscriber is the per-sidecar state the fleet needs; only its own
// goroutine touches it.
type subscriber struct {
	idx    int
	seen   int64 // id of the last change this subscriber saw
	typed  [4]bool
	synced bool
}

// arm makes p the change being measured, starting now. Arm it before
// triggering the change.
func (f *fleet) arm(id int64, p probe) *change {
	c := &change{id: id, probe: p, lat: make([]atomic.Int64, f.n), done: make(chan struct{})}
	c.remaining.Store(int64(f.n))
	c.start = time.Now()
	f.cur.Store(c)
	return c
}

// observe is called by a subscriber for every response it receives.
func (f *fleet) observe(s *subscriber, u *update) {
	if !s.synced {
		if i := typeIndex(u.typeURL); i >= 0 {
			s.typed[i] = true
		}
		if s.typed == [4]bool{true, true, true, true} {
			s.synced = true
			f.synced.Add(1)
		}
	}
	c := f.cur.Load()
	if c == nil || s.seen == c.id || !c.probe(u) {
		return
	}
	s.seen = c.id
	c.lat[s.idx].Store(int64(max(time.Since(c.start), 1)))
	if c.remaining.Add(-1) == 0 {
		close(c.done)
	}
}

// waitSyncedAtLeast waits until k subscribers have had an answer for every
// type.
func (f *fleet) waitSyncedAtLeast(k int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for f.synced.Load() < int64(k) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d subscribers synced after %v (%d streams failed)", f.synced.Load(), k, timeout, f.failed.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// waitQuiet waits until no payload byte arrived for quiet (bounded by max).
func (f *fleet) waitQuiet(quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	last := f.bytes.n.Load()
	since := time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(quiet / 5)
		if n := f.bytes.n.Load(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= quiet {
			return
		}
	}
}

// dial opens one subscriber's own connection (a sidecar has its own), with
// the fleet's byte counter.
func (f *fleet) dial(addr string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(&f.bytes),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	f.onClose(func() { _ = conn.Close() })
	return conn, nil
}

func (f *fleet) onClose(fn func()) {
	f.mu.Lock()
	f.closers = append(f.closers, fn)
	f.mu.Unlock()
}

// run starts fn as a subscriber goroutine; an error while the fleet runs
// counts as a failed stream.
func (f *fleet) run(name string, fn func(ctx context.Context) error) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		if err := fn(f.ctx); err != nil && f.ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			if f.failed.Add(1) <= 3 {
				logf("subscriber %s: %v", name, err)
			}
		}
	}()
}

// close ends every stream and connection and waits for the goroutines.
func (f *fleet) close() {
	f.cancel()
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fn := range f.closers {
		fn()
	}
	f.closers = nil
}

// simTypes are the four types a simulated sidecar subscribes to: the
// configuration types by wildcard, then the endpoint model's type by name.
func simTypes(m endpointModel) [4]string {
	return [4]string{resource.ComponentType, resource.PolicyType, resource.SubscriptionType, m.TypeURL()}
}

// typeIndex is the index of typeURL in simTypes: the configuration types,
// and 3 for any other (the endpoints type, whichever the model uses).
func typeIndex(typeURL string) int {
	switch typeURL {
	case resource.ComponentType:
		return 0
	case resource.PolicyType:
		return 1
	case resource.SubscriptionType:
		return 2
	}
	return 3
}

// byteCounter is a gRPC stats handler that sums the payload sizes of the
// messages received: the serialized size of every (Delta)DiscoveryResponse.
type byteCounter struct{ n atomic.Int64 }

var _ stats.Handler = (*byteCounter)(nil)

func (b *byteCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (b *byteCounter) HandleRPC(_ context.Context, s stats.RPCStats) {
	if p, ok := s.(*stats.InPayload); ok {
		b.n.Add(int64(p.Length))
	}
}
func (b *byteCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (b *byteCounter) HandleConn(context.Context, stats.ConnStats)                       {}

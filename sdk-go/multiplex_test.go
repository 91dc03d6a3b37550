package outrig

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	"github.com/outrig/outrig/api/shm"
	"google.golang.org/protobuf/proto"
)

// fakeMultiplex serves the Multiplex streams of the fake sidecar: each
// frame is run by the fake's unary methods (through api/shm's by-id
// adapter), one at a time per stream, bounded by the frame's timeout — as
// the sidecar's transport/grpc does.
type fakeMultiplex struct {
	runtimev1.UnimplementedMultiplexServer
	h shm.Handler

	opened    atomic.Int32 // streams opened
	calls     atomic.Int32 // frames answered
	lastLimit atomic.Int64 // timeout_us of the last frame
}

func newFakeMultiplex(t testing.TB, f *fakeSidecar) *fakeMultiplex {
	h, err := shm.NewServiceHandler(&runtimev1.Runtime_ServiceDesc, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeMultiplex{h: h}
}

func (m *fakeMultiplex) Calls(s runtimev1.Multiplex_CallsServer) error {
	m.opened.Add(1)
	for {
		req, err := s.Recv()
		if err != nil {
			return nil
		}
		m.lastLimit.Store(req.GetTimeoutUs())
		ctx, cancel := s.Context(), context.CancelFunc(func() {})
		if t := req.GetTimeoutUs(); t > 0 {
			ctx, cancel = context.WithTimeout(ctx, time.Duration(t)*time.Microsecond)
		}
		out, err := m.h.Handle(ctx, uint16(req.GetMethod()), req.GetPayload())
		cancel()
		resp := &runtimev1.CallFrame{Id: req.GetId(), Payload: out}
		if err != nil {
			resp = &runtimev1.CallFrame{Id: req.GetId(), Status: shm.EncodeStatus(err)}
		}
		m.calls.Add(1)
		if err := s.Send(resp); err != nil {
			return err
		}
	}
}

// Unary calls travel on Multiplex streams by default, one stream reused by
// sequential calls; WithUnaryRPC and a sidecar without Multiplex use unary
// gRPC calls, with the same results.
func TestUnaryCallsCarriers(t *testing.T) {
	checkNoLeaks(t)
	ctx := context.Background()
	get := func(c *Client) {
		t.Helper()
		if _, err := c.GetState(ctx, "s", "k"); err != nil {
			t.Fatalf("GetState: %v", err)
		}
		if err := c.SaveState(ctx, "s", "k", []byte("v")); err != nil {
			t.Fatalf("SaveState: %v", err)
		}
	}

	c, ts := newTestClient(t)
	for range 5 {
		get(c)
	}
	if got := ts.mux.calls.Load(); got != 10 {
		t.Errorf("default: %d calls on Multiplex streams, want 10", got)
	}
	if got := ts.mux.opened.Load(); got != 1 {
		t.Errorf("default: %d streams opened for sequential calls, want 1", got)
	}

	u, ts2 := newTestClient(t, WithUnaryRPC())
	get(u)
	if got := ts2.mux.calls.Load(); got != 0 {
		t.Errorf("WithUnaryRPC: %d calls went on Multiplex streams", got)
	}
	if got := len(ts2.fake.calls); got != 2 {
		t.Errorf("WithUnaryRPC: the sidecar saw %d calls, want 2", got)
	}

	f := newFakeSidecar()
	f.noMultiplex = true
	old := startServer(t, f, "")
	o, err := NewClient(ctx, WithAddress(old.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	get(o)
	get(o)
	if got := len(f.calls); got != 4 {
		t.Errorf("sidecar without Multiplex: it saw %d unary calls, want 4", got)
	}
}

// Concurrent callers each get their own stream, and the streams are kept
// for later calls.
func TestMultiplexStreamPerConcurrentCall(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	const n = 8
	var arrived sync.WaitGroup
	arrived.Add(n)
	release := make(chan struct{})
	ts.fake.setOnCall(func(ctx context.Context, _ string, _ proto.Message) (proto.Message, error) {
		arrived.Done()
		<-release
		return nil, nil
	})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.GetState(context.Background(), "s", "k")
			errs <- err
		}()
	}
	arrived.Wait() // all n calls are in the sidecar at once
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ts.fake.setOnCall(nil)
	for range 20 {
		if _, err := c.GetState(context.Background(), "s", "k"); err != nil {
			t.Fatal(err)
		}
	}
	if got := ts.mux.opened.Load(); got != n {
		t.Errorf("%d streams opened, want %d (one per concurrent call, then reused)", got, n)
	}
}

// The caller's deadline travels with the call and bounds it in the sidecar;
// a caller that gives up gets DEADLINE_EXCEEDED at once, the sidecar's call
// is cancelled, and the client keeps working.
func TestMultiplexDeadline(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	cancelled := make(chan struct{}, 1)
	ts.fake.setOnCall(func(ctx context.Context, _ string, _ proto.Message) (proto.Message, error) {
		<-ctx.Done()
		cancelled <- struct{}{}
		return nil, ctx.Err()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.GetState(ctx, "s", "k")
	if !errors.Is(err, ErrDeadlineExceeded) {
		t.Fatalf("GetState past its deadline: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
	if l := ts.mux.lastLimit.Load(); l <= 0 || l > 150_000 {
		t.Errorf("the frame carried timeout_us %d, want (0, 150000]", l)
	}
	select {
	case <-cancelled:
	case <-time.After(2 * time.Second):
		t.Fatal("the sidecar's call was not cancelled")
	}
	ts.fake.setOnCall(nil)
	if _, err := c.GetState(context.Background(), "s", "k"); err != nil {
		t.Fatalf("next call: %v", err)
	}
}

// Streams kept idle across a sidecar restart are found broken and replaced;
// calls work again once the new sidecar is up.
func TestMultiplexSurvivesSidecarRestart(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	if _, err := c.GetState(context.Background(), "s", "k"); err != nil {
		t.Fatal(err)
	}
	ts.srv.Stop()
	next := startServer(t, newFakeSidecar(), ts.path)
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.GetState(ctx, "s", "k")
		cancel()
		if err == nil {
			break
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("during the restart: %v, want ErrUnavailable", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no call succeeded within 5s of the restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if next.mux.calls.Load() == 0 {
		t.Error("after the restart the calls did not use Multiplex streams")
	}
}

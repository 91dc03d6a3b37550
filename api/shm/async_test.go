package shm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// asyncBackend is an AsyncHandler in the shape of a pipelined store: one
// goroutine completes the calls it was given, in batches.
//   - methods 1, 3: started asynchronously, answered with transform by the
//     backend goroutine (also when its response spans several frames);
//   - method 2: refused at once inside HandleAsync (done before it returns);
//   - method 7: answered after 30 ms (callers give up before);
//   - others: declined, so they run through Handle.
type asyncBackend struct {
	work    chan func()
	started atomic.Int64
	sync    atomic.Int64
}

func newAsyncBackend(t *testing.T) *asyncBackend {
	b := &asyncBackend{work: make(chan func(), 1024)}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case f := <-b.work:
				time.Sleep(20 * time.Microsecond) // a round trip
				f()
				for n := len(b.work); n > 0; n-- {
					(<-b.work)()
				}
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return b
}

// Handle answers as HandleAsync does, synchronously.
func (b *asyncBackend) Handle(_ context.Context, m uint16, req []byte) ([]byte, error) {
	b.sync.Add(1)
	if m == 2 {
		return nil, status.Error(codes.ResourceExhausted, "refused")
	}
	if m == 7 {
		time.Sleep(30 * time.Millisecond)
	}
	return transform(m, req), nil
}

func (b *asyncBackend) HandleAsync(_ context.Context, m uint16, req []byte, done func([]byte, error)) bool {
	switch m {
	case 1, 3:
		b.started.Add(1)
		b.work <- func() { done(transform(m, req), nil) }
	case 2:
		b.started.Add(1)
		done(nil, status.Error(codes.ResourceExhausted, "refused before starting"))
	case 7:
		b.started.Add(1)
		time.AfterFunc(30*time.Millisecond, func() { done(transform(m, req), nil) })
	default:
		return false
	}
	return true
}

// Overlapping calls of the methods the handler serves asynchronously are
// answered from the backend's goroutine, each to its own caller, whatever
// the size of the answer and the rings; declined methods run through
// Handle; a refusal inside HandleAsync reaches its caller with its code.
func TestAsyncHandlerAnswersOverlappingCalls(t *testing.T) {
	checkLeaks(t)
	for _, ring := range []uint32{0, MinRingSize} {
		t.Run(fmt.Sprintf("ring=%d", ring), func(t *testing.T) {
			b := newAsyncBackend(t)
			s := startServer(t, ServerOptions{DefaultRingSize: ring}, b)
			c := dial(t, s.Addr(), DialOptions{})
			const callers, calls = 16, 300
			var wg sync.WaitGroup
			errs := make(chan error, callers)
			for g := 0; g < callers; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < calls; i++ {
						method := uint16(1 + (g+i)%4) // 1, 2, 3, 4
						size := 10 + (g*31+i)%300
						if i%50 == 0 {
							size = 20 << 10 // several frames, larger than a small ring
						}
						req := payloadFor(uint64(g*calls+i), size)
						resp, err := c.Call(context.Background(), method, req)
						if method == 2 {
							if status.Code(err) != codes.ResourceExhausted {
								errs <- fmt.Errorf("caller %d call %d: got %v, want RESOURCE_EXHAUSTED", g, i, err)
								return
							}
							continue
						}
						if err != nil {
							errs <- fmt.Errorf("caller %d call %d (method %d): %w", g, i, method, err)
							return
						}
						if !bytes.Equal(resp, transform(method, req)) {
							errs <- fmt.Errorf("caller %d call %d (method %d): response is not its own", g, i, method)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			st := s.Stats()
			if st.AsyncCalls == 0 || b.started.Load() != st.AsyncCalls {
				t.Errorf("%d calls started asynchronously (backend saw %d), want > 0 and equal", st.AsyncCalls, b.started.Load())
			}
			if b.sync.Load() == 0 {
				t.Error("no call ran through Handle (method 4 is declined)")
			}
			waitFor(t, "every call released", 5*time.Second, func() bool { return s.Stats().CallsInFlight == 0 })
		})
	}
}

// A lone caller is not served asynchronously: its calls run as Handle
// describes (inline, polled for).
func TestAsyncHandlerLeavesLoneCallsToHandle(t *testing.T) {
	checkLeaks(t)
	b := newAsyncBackend(t)
	s := startServer(t, ServerOptions{}, b)
	c := dial(t, s.Addr(), DialOptions{})
	for i := 0; i < 200; i++ {
		req := payloadFor(uint64(i), 100)
		resp, err := c.Call(context.Background(), 1, req)
		if err != nil || !bytes.Equal(resp, transform(1, req)) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if st := s.Stats(); st.AsyncCalls != 0 || b.sync.Load() != 200 {
		t.Errorf("lone calls: %d asynchronous, %d through Handle; want 0 and 200", st.AsyncCalls, b.sync.Load())
	}
}

// A caller that gives up on an asynchronous call is freed at once; the late
// answer is dropped and the call's slot is released when it comes.
func TestAsyncCallAbandonedByItsCaller(t *testing.T) {
	checkLeaks(t)
	b := newAsyncBackend(t)
	s := startServer(t, ServerOptions{}, b)
	c := dial(t, s.Addr(), DialOptions{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ { // overlapping, so that they go asynchronous
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := c.Call(ctx, 7, []byte("slow"))
			if status.Code(err) != codes.DeadlineExceeded || time.Since(start) > 25*time.Millisecond {
				errs <- fmt.Errorf("caller %d: %v after %v, want DEADLINE_EXCEEDED before the 30 ms answer", g, err, time.Since(start))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if b.started.Load() == 0 {
		t.Fatal("no call went asynchronous")
	}
	waitFor(t, "the late answers to release their calls", 5*time.Second, func() bool { return s.Stats().CallsInFlight == 0 })
	// The connection still serves.
	if resp, err := c.Call(context.Background(), 4, []byte("after")); err != nil || !bytes.Equal(resp, transform(4, []byte("after"))) {
		t.Fatalf("call after the abandoned ones: %v", err)
	}
	if errors.Is(c.Err(), context.Canceled) {
		t.Fatal("connection closed")
	}
}

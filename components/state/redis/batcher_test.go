package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	cstate "github.com/dapr/components-contrib/state"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// Many concurrent callers each read back what they wrote, with and without
// ETags, while their commands travel in shared pipelines; an ETag mismatch
// inside a pipeline is that caller's alone.
func TestConcurrentCallersShareBatches(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, p := newStore(t)
	ctx := context.Background()
	const callers, rounds = 32, 60
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := fmt.Sprintf("%sc%d", p, c)
			for r := range rounds {
				want := fmt.Sprintf("v%d-%d", c, r)
				if err := s.Set(ctx, &cstate.SetRequest{Key: k, Value: []byte(want)}); err != nil {
					errs <- fmt.Errorf("caller %d set: %w", c, err)
					return
				}
				got, err := s.Get(ctx, &cstate.GetRequest{Key: k})
				if err != nil || string(got.Data) != want || got.ETag == nil {
					errs <- fmt.Errorf("caller %d round %d: got %+v, %v; want %q", c, r, got, err, want)
					return
				}
				bad := "1"
				err = s.Set(ctx, &cstate.SetRequest{Key: k, Value: []byte("x"), ETag: &bad, Options: cstate.SetStateOption{Concurrency: cstate.FirstWrite}})
				if !etagMismatch(err) {
					errs <- fmt.Errorf("caller %d: write with a stale ETag: %v, want a mismatch", c, err)
					return
				}
				if err := s.Set(ctx, &cstate.SetRequest{Key: k, Value: []byte(want + "!"), ETag: got.ETag, Options: cstate.SetStateOption{Concurrency: cstate.FirstWrite}}); err != nil {
					errs <- fmt.Errorf("caller %d: write with its ETag: %w", c, err)
					return
				}
			}
			_ = s.Delete(ctx, &cstate.DeleteRequest{Key: k})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s.batch.mu.Lock()
	batches := s.batch.batches
	s.batch.mu.Unlock()
	t.Logf("%d pipelines of more than one command", batches)
	if batches == 0 {
		t.Error("32 concurrent callers never shared a pipeline")
	}
	s.Close()
}

// A server that lost the scripts (restart, SCRIPT FLUSH) still takes writes.
func TestWritesAfterScriptFlush(t *testing.T) {
	s, p := newStore(t)
	ctx := context.Background()
	if err := s.Set(ctx, &cstate.SetRequest{Key: p + "a", Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	raw := goredis.NewClient(&goredis.Options{Addr: addr})
	defer raw.Close()
	if err := raw.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, &cstate.SetRequest{Key: p + "a", Value: []byte("2")}); err != nil {
		t.Fatalf("Set after SCRIPT FLUSH: %v", err)
	}
	if err := s.Delete(ctx, &cstate.DeleteRequest{Key: p + "a"}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}

// A caller whose context ends while its command waits returns at once;
// commands still waiting when the store closes fail instead of hanging.
func TestBatcherContextAndClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	// A server that accepts and never answers.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	}()
	client := goredis.NewClient(&goredis.Options{Addr: lis.Addr().String(), ReadTimeout: 10 * time.Second, MaxRetries: -1})
	b := newBatcher(client)
	ping := func(ctx context.Context) error { return b.do(ctx, goredis.NewStatusCmd(ctx, "ping")) }

	first := make(chan error, 1)
	go func() { first <- ping(context.Background()) }() // sent straight, never answered
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := ping(ctx); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("waiting call past its deadline: %v after %v", err, time.Since(start))
	}
	queued := make(chan error, 1)
	go func() { queued <- ping(context.Background()) }()
	time.Sleep(50 * time.Millisecond)

	start = time.Now()
	_ = client.Close() // as Store.Close: the client first, then the batcher
	b.close()
	for _, c := range []chan error{first, queued} {
		if err := <-c; err == nil {
			t.Fatal("a command waiting at close succeeded")
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("close took %v", d)
	}
	if err := ping(context.Background()); !errors.Is(err, errBatcherClosed) {
		t.Fatalf("after close: %v", err)
	}
}

// When the server is gone, every command of a batch fails (go-redis leaves
// a pipeline's commands untouched when it cannot connect at all).
func TestBatchToDeadServerFailsEveryCommand(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	_ = lis.Close() // nothing listens there now
	client := goredis.NewClient(&goredis.Options{Addr: dead, DialTimeout: 200 * time.Millisecond, MaxRetries: 1})
	b := newBatcher(client)
	defer func() { _ = client.Close(); b.close() }()
	var wg sync.WaitGroup
	var failed, answered sync.Map
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := goredis.NewSliceCmd(context.Background(), "hmget", "k", "data", "version")
			if err := b.do(context.Background(), cmd); err != nil {
				failed.Store(i, err)
			} else {
				answered.Store(i, cmd.Val())
			}
		}()
	}
	wg.Wait()
	answered.Range(func(k, v any) bool {
		t.Errorf("command %v to a dead server succeeded with %v", k, v)
		return true
	})
	b.mu.Lock()
	batches := b.batches
	b.mu.Unlock()
	t.Logf("%d pipelines", batches)
}

package outrig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
)

// This file holds what Subscribe, SubscribeBinding and Serve share: the
// reconnect loop, the handle of a loop started in the background, the
// bounded pool that runs handlers, and the options of all three.

// Defaults of the stream loops.
const (
	defaultMinBackoff       = 100 * time.Millisecond
	defaultMaxBackoff       = 5 * time.Second
	defaultServeConcurrency = 64
)

// StreamOption configures the loops of Subscribe, SubscribeBinding and
// Serve (and their Start forms). Every StreamOption is also a
// SubscribeOption.
type StreamOption interface {
	SubscribeOption
	applyStream(*streamConfig)
}

type streamConfig struct {
	noReconnect bool
	minBackoff  time.Duration
	maxBackoff  time.Duration
	concurrency int // 0: the default of the loop kind
	onReconnect func(err error, delay time.Duration)
	err         string
}

func (c *streamConfig) fail(msg string) {
	if c.err == "" {
		c.err = msg
	}
}

type streamOptionFunc func(*streamConfig)

func (f streamOptionFunc) applyStream(c *streamConfig)       { f(c) }
func (f streamOptionFunc) applySubscribe(c *subscribeConfig) { f(&c.stream) }

// WithoutReconnect makes the loop return the first stream failure instead of
// reconnecting.
func WithoutReconnect() StreamOption {
	return streamOptionFunc(func(c *streamConfig) { c.noReconnect = true })
}

// WithReconnectBackoff sets the delay before reconnecting: it starts at min,
// doubles on each failed attempt up to max, is jittered (between half and all
// of the value), and goes back to min once a stream was ready again.
// Defaults: 100ms and 5s. 0 < min <= max is required.
func WithReconnectBackoff(min, max time.Duration) StreamOption {
	return streamOptionFunc(func(c *streamConfig) {
		if min <= 0 || max < min {
			c.fail(fmt.Sprintf("WithReconnectBackoff: want 0 < min <= max, got min %v max %v", min, max))
			return
		}
		c.minBackoff, c.maxBackoff = min, max
	})
}

// WithMaxConcurrentHandlers bounds how many handler calls run at once.
// Defaults: 1 for Subscribe and SubscribeBinding (events are handled one at
// a time, in delivery order) and 64 for Serve. When the bound is reached the
// SDK stops reading the stream, so the sidecar sees back-pressure.
func WithMaxConcurrentHandlers(n int) StreamOption {
	return streamOptionFunc(func(c *streamConfig) {
		if n <= 0 {
			c.fail(fmt.Sprintf("WithMaxConcurrentHandlers: %d must be positive", n))
			return
		}
		c.concurrency = n
	})
}

// WithReconnectHook calls fn each time the loop is about to reconnect, with
// the error that ended the stream and the delay before the next attempt
// (e.g. to log it). fn runs on the loop's goroutine and must not block long.
func WithReconnectHook(fn func(err error, delay time.Duration)) StreamOption {
	return streamOptionFunc(func(c *streamConfig) { c.onReconnect = fn })
}

// errStreamEnded reports that the sidecar closed a stream without an error
// (io.EOF from Recv), e.g. while shutting down. It is retried like
// UNAVAILABLE.
func errStreamEnded(op string) error {
	return newError(op, codes.Unavailable, "the sidecar ended the stream")
}

// recvErr converts an error from Recv on stream op.
func recvErr(op string, err error) error {
	if errors.Is(err, io.EOF) {
		return errStreamEnded(op)
	}
	return fromRPC(op, err, nil)
}

// protocolErr is a message the SDK did not expect on stream op. Not retried.
func protocolErr(op, msg string) error {
	return newError(op, codes.Internal, "stream protocol: "+msg)
}

// attemptFunc opens one stream, does the handshake, calls ready once the
// sidecar accepted it, and processes messages until the stream ends; it
// returns why it ended. It returns only after every handler it started has
// returned.
type attemptFunc func(ctx context.Context, ready func()) error

// runLoop runs attempts until ctx is done (then it returns nil) or an
// attempt fails in a way that is not retried (then it returns that error).
// UNAVAILABLE (sidecar unreachable or restarting) and a stream the sidecar
// ended are retried with backoff unless cfg.noReconnect. With
// failBeforeReady, a failure before the first ready is never retried.
// onFirstReady, if not nil, is called once.
func runLoop(ctx context.Context, cfg *streamConfig, failBeforeReady bool, attempt attemptFunc, onFirstReady func()) error {
	backoff := cfg.minBackoff
	everReady := false
	for {
		ready := false
		err := attempt(ctx, func() {
			ready = true
			if !everReady {
				everReady = true
				if onFirstReady != nil {
					onFirstReady()
				}
			}
		})
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			// An attempt returns nil only when ctx is done; be defensive.
			err = newError("stream", codes.Internal, "stream attempt ended without error")
		}
		if cfg.noReconnect || (failBeforeReady && !everReady) || !errors.Is(err, ErrUnavailable) {
			return err
		}
		if ready {
			backoff = cfg.minBackoff
		}
		delay := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, cfg.maxBackoff)
		if cfg.onReconnect != nil {
			cfg.onReconnect(err, delay)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Stream is a Subscribe, SubscribeBinding or Serve loop running in the
// background, returned by the Start methods. Its methods are safe for
// concurrent use.
type Stream struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Stop ends the loop, waits until its handlers have returned, and returns
// the loop's error (nil when it ended only because of Stop or its context).
// Events whose handlers had not answered are redelivered by the sidecar.
func (s *Stream) Stop() error {
	s.cancel()
	<-s.done
	return s.err
}

// Done is closed when the loop has ended.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Err is the loop's error once Done is closed (nil before, and when the loop
// ended because of Stop or its context).
func (s *Stream) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// startLoop runs the loop on a goroutine and returns once the first stream
// is ready, or with the error of the first attempt (then nothing keeps
// running).
func startLoop(ctx context.Context, cfg *streamConfig, attempt attemptFunc) (*Stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	s := &Stream{cancel: cancel, done: make(chan struct{})}
	readyCh := make(chan struct{})
	go func() {
		defer close(s.done)
		s.err = runLoop(ctx, cfg, true, attempt, func() { close(readyCh) })
	}()
	select {
	case <-readyCh:
		return s, nil
	case <-s.done:
		cancel()
		if s.err != nil {
			return nil, s.err
		}
		return nil, fmt.Errorf("outrig: stream not started: %w", context.Cause(ctx))
	}
}

// pool runs handler calls with at most n at once. With n == 1 calls run
// inline on the receiving goroutine, which keeps delivery order.
type pool struct {
	sem chan struct{}
	wg  sync.WaitGroup
}

func newPool(n int) *pool {
	if n <= 1 {
		return &pool{}
	}
	return &pool{sem: make(chan struct{}, n)}
}

// run calls fn, in the background when the pool is concurrent; it blocks
// while n calls run. It returns false without calling fn if ctx ends first.
func (p *pool) run(ctx context.Context, fn func()) bool {
	if p.sem == nil {
		fn()
		return true
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	p.wg.Add(1)
	go func() {
		defer func() { <-p.sem; p.wg.Done() }()
		fn()
	}()
	return true
}

// wait blocks until every call started by run has returned.
func (p *pool) wait() { p.wg.Wait() }

// lockedSender serialises Send on a stream shared by concurrent handlers.
type lockedSender[Req any] struct {
	mu   sync.Mutex
	send func(*Req) error
}

func (l *lockedSender[Req]) Send(m *Req) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.send(m)
}

package redis

import (
	"context"
	"errors"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// batcher sends the single-key commands of concurrent callers to Redis
// together, in one pipeline (one write and one read for the batch instead
// of a write and a read per command).
//
// Why our own: go-redis v9 sends every command of a Client on its own
// connection with its own write; with 16 concurrent GetState calls those
// writes were 30% of the sidecar's CPU (perf profile, docs/benchmarks.md),
// and go-redis has no automatic pipelining.
//
// A caller that finds nothing in flight sends its command straight away, on
// its own goroutine: a lone caller pays nothing for the batcher. Callers that
// arrive while a command or a batch is in flight queue; one goroutine owned
// by the batcher sends what is queued as one pipeline, and again as soon as
// the previous batch is answered, so a batch holds the commands that
// arrived during the previous round trip (at most maxBatch).
//
// Lifecycle: newBatcher starts the goroutine, close stops it; commands
// queued then fail with errBatcherClosed. Safe for concurrent use.
type batcher struct {
	client *goredis.Client

	mu       sync.Mutex
	direct   bool // a command sent straight is not answered yet
	batching bool
	closed   bool
	queue    []*queued
	batches  int // pipelines of more than one command sent (for tests)

	kick chan struct{} // buffered 1: the queue is not empty
	stop chan struct{}
	done chan struct{}
	// answers carries answered batches with doAsync commands to the
	// goroutine that runs their callbacks, so that the next pipeline goes
	// out while they run (one hand-off per batch).
	answers    chan []*queued
	answerDone chan struct{} // closed when that goroutine has ended
}

type queued struct {
	cmd  goredis.Cmder
	done chan struct{} // closed when answered (do)
	cb   func()        // or called when answered (doAsync)
}

// answered tells q's caller that q.cmd holds its result.
func (q *queued) answered() {
	if q.cb != nil {
		q.cb()
		return
	}
	close(q.done)
}

// maxBatch bounds the commands of one pipeline.
const maxBatch = 128

var errBatcherClosed = errors.New("redis: store closed")

func newBatcher(client *goredis.Client) *batcher {
	b := &batcher{client: client, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		answers: make(chan []*queued, 16), answerDone: make(chan struct{})}
	go b.run()
	go b.answer()
	return b
}

// do sends cmd and waits for its answer or for ctx; the result is in cmd.
// When ctx ends first, a queued command may still be sent later (as any
// command whose caller gave up after sending it).
func (b *batcher) do(ctx context.Context, cmd goredis.Cmder) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errBatcherClosed
	}
	if !b.direct && !b.batching && len(b.queue) == 0 {
		b.direct = true
		b.mu.Unlock()
		err := b.client.Process(ctx, cmd)
		b.mu.Lock()
		b.direct = false
		b.mu.Unlock()
		return err
	}
	q := &queued{cmd: cmd, done: make(chan struct{})}
	b.queue = append(b.queue, q)
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
	select {
	case <-q.done:
		return cmd.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// doAsync queues cmd for the next pipeline and returns; cb runs once cmd
// holds its result (on the batcher's goroutine, or on this one if the
// batcher is closed), and must not block: the rest of the batch waits for
// it. Unlike do it never sends straight away: a caller that does not wait
// has no goroutine to send on.
func (b *batcher) doAsync(cmd goredis.Cmder, cb func()) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		cmd.SetErr(errBatcherClosed)
		cb()
		return
	}
	b.queue = append(b.queue, &queued{cmd: cmd, cb: cb})
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// answer runs the callbacks of doAsync commands, batch by batch.
func (b *batcher) answer() {
	defer close(b.answerDone)
	for batch := range b.answers {
		for _, q := range batch {
			if q.cb != nil {
				q.cb()
			}
		}
	}
}

func (b *batcher) run() {
	defer close(b.done)
	defer func() { close(b.answers); <-b.answerDone }()
	for {
		select {
		case <-b.stop:
			b.mu.Lock()
			rest := b.queue
			b.queue = nil
			b.mu.Unlock()
			for _, q := range rest {
				q.cmd.SetErr(errBatcherClosed)
				q.answered()
			}
			return
		case <-b.kick:
		}
		for b.send() {
		}
	}
}

// send sends what is queued as one pipeline; it reports whether there was
// anything.
func (b *batcher) send() bool {
	b.mu.Lock()
	n := min(len(b.queue), maxBatch)
	batch := b.queue[:n:n]
	b.queue = b.queue[n:]
	if len(b.queue) == 0 {
		b.queue = nil
	}
	b.batching = n > 0
	b.mu.Unlock()
	if n == 0 {
		return false
	}
	var err error
	if n == 1 {
		err = b.client.Process(context.Background(), batch[0].cmd)
	} else {
		b.mu.Lock()
		b.batches++
		b.mu.Unlock()
		pipe := b.client.Pipeline()
		// go-redis gives every command of a pipeline the error reply of
		// the first one when they have none of their own (it reads it as
		// "retry the pipeline", e.g. LOADING); a PING first keeps one
		// caller's error reply (an ETag mismatch) from becoming everyone's.
		_ = pipe.Process(context.Background(), goredis.NewStatusCmd(context.Background(), "ping"))
		for _, q := range batch {
			_ = pipe.Process(context.Background(), q.cmd)
		}
		// Each command carries its own reply or error reply.
		_, err = pipe.Exec(context.Background())
	}
	failed := err != nil && !isReplyError(err)
	async := false
	for _, q := range batch {
		if failed && q.cmd.Err() == nil {
			// go-redis leaves the commands untouched when it gives up
			// reconnecting: they were not answered.
			q.cmd.SetErr(err)
		}
		if q.cb == nil {
			close(q.done)
		} else {
			async = true
		}
	}
	if async {
		b.answers <- batch
	}
	b.mu.Lock()
	b.batching = false
	b.mu.Unlock()
	return true
}

// close stops the goroutine; queued commands fail. Safe to call more than
// once.
func (b *batcher) close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	<-b.done
}

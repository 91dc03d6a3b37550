package outrig

import (
	"context"
	"fmt"
	"log"
	"runtime/debug"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
)

// EventStatus is a handler's verdict on one event.
type EventStatus int32

// Event verdicts. Any other value returned by a handler (including the
// zero value) is sent as EventRetry, so an event is never lost by mistake.
const (
	// EventSuccess: processed; not delivered again.
	EventSuccess = EventStatus(runtimev1.EventStatus_EVENT_STATUS_SUCCESS)
	// EventRetry: deliver again, up to the subscription's bound, then
	// dead-letter.
	EventRetry = EventStatus(runtimev1.EventStatus_EVENT_STATUS_RETRY)
	// EventDrop: discard; neither redelivered nor dead-lettered.
	EventDrop = EventStatus(runtimev1.EventStatus_EVENT_STATUS_DROP)
)

func (s EventStatus) wire() runtimev1.EventStatus {
	switch s {
	case EventSuccess, EventDrop:
		return runtimev1.EventStatus(s)
	}
	return runtimev1.EventStatus_EVENT_STATUS_RETRY
}

// TopicEvent is a CloudEvents 1.0 event delivered to a Subscribe handler.
type TopicEvent struct {
	ID              string
	Source          string
	Type            string
	SpecVersion     string
	DataContentType string
	Data            []byte
	Topic           string
	PubsubName      string
	// Path is the route chosen by a declarative Subscription's rules ("" when
	// none).
	Path string
	// Metadata holds other CloudEvent attributes and transport metadata.
	Metadata map[string]string
	// Attempt is the delivery attempt, starting at 1.
	Attempt int
}

// TopicEventHandler handles one event and says what to do with it. It may
// be called concurrently when WithMaxConcurrentHandlers(n > 1) is given. Its
// context is cancelled when the stream ends; a verdict returned after that
// is lost and the sidecar delivers the event again.
type TopicEventHandler func(ctx context.Context, e *TopicEvent) EventStatus

// BindingEvent is one event of an input binding.
type BindingEvent struct {
	ID       string
	Name     string
	Data     []byte
	Metadata map[string]string
}

// BindingEventHandler handles one input binding event; see
// TopicEventHandler for concurrency and cancellation.
type BindingEventHandler func(ctx context.Context, e *BindingEvent) EventStatus

type subscribeConfig struct {
	stream          streamConfig
	deadLetterTopic string
	maxRedeliveries int32
	md              metadataBuilder
}

type subscribeOptionFunc func(*subscribeConfig)

func (f subscribeOptionFunc) applySubscribe(c *subscribeConfig) { f(c) }

// WithDeadLetterTopic sends events that exhausted their redeliveries to
// topic (on the same pubsub). A declarative Subscription for the same topic
// takes precedence.
func WithDeadLetterTopic(topic string) SubscribeOption {
	return subscribeOptionFunc(func(c *subscribeConfig) { c.deadLetterTopic = topic })
}

// WithMaxRedeliveries bounds how often an event answered EventRetry (or not
// answered in time) is delivered again before it is dead-lettered. 0 means
// the sidecar's default (3); negative values are rejected.
func WithMaxRedeliveries(n int) SubscribeOption {
	return subscribeOptionFunc(func(c *subscribeConfig) {
		if n < 0 || n > 1<<30 {
			c.stream.fail(fmt.Sprintf("WithMaxRedeliveries: %d out of range", n))
			return
		}
		c.maxRedeliveries = int32(n)
	})
}

// Subscribe receives the events of topic on the pubsub component and calls
// handler for each; the handler's EventStatus is sent back as the ack. A
// handler that panics is answered EventRetry (the panic is logged with the
// standard log package).
//
// Subscribe blocks until ctx is done (then it returns nil) or the stream
// fails for good. When the sidecar is unreachable or restarts (UNAVAILABLE,
// also before the first connection) Subscribe reconnects with jittered
// exponential backoff and subscribes again; WithoutReconnect turns that off.
// Other failures (unknown pubsub: ErrNotFound, bad arguments:
// ErrInvalidArgument, Client closed) end it with that error. Delivery is at
// least once: an event whose ack was lost is delivered again.
//
// Run it on its own goroutine to do other work meanwhile, or use
// StartSubscribe, which returns once the subscription is active.
//
// Options: WithDeadLetterTopic, WithMaxRedeliveries, WithMetadata and the
// StreamOptions (WithMaxConcurrentHandlers, WithReconnectBackoff,
// WithReconnectHook, WithoutReconnect).
func (c *Client) Subscribe(ctx context.Context, pubsub, topic string, handler TopicEventHandler, opts ...SubscribeOption) error {
	cfg, attempt, err := c.subscribePrepare(pubsub, topic, handler, opts)
	if err != nil {
		return err
	}
	return runLoop(ctx, cfg, false, attempt, nil)
}

// StartSubscribe is Subscribe in the background: it returns once the sidecar
// has accepted the subscription (so events published afterwards reach
// handler), or with the error of that first attempt — it does not wait for
// an unreachable sidecar. After that it reconnects as Subscribe does. Stop
// the returned Stream (or cancel ctx) to end it.
func (c *Client) StartSubscribe(ctx context.Context, pubsub, topic string, handler TopicEventHandler, opts ...SubscribeOption) (*Stream, error) {
	cfg, attempt, err := c.subscribePrepare(pubsub, topic, handler, opts)
	if err != nil {
		return nil, err
	}
	return startLoop(ctx, cfg, attempt)
}

func (c *Client) subscribePrepare(pubsub, topic string, handler TopicEventHandler, opts []SubscribeOption) (*streamConfig, attemptFunc, error) {
	const op = "Subscribe"
	if err := requirePubsubTopic(op, pubsub, topic); err != nil {
		return nil, nil, err
	}
	if handler == nil {
		return nil, nil, invalidArg(op, "handler", "is nil")
	}
	sc := subscribeConfig{stream: defaultStreamConfig(1)}
	for _, o := range opts {
		if o == nil {
			return nil, nil, invalidArg(op, "option", "is nil")
		}
		o.applySubscribe(&sc)
	}
	if sc.stream.err != "" {
		return nil, nil, invalidArg(op, "option", sc.stream.err)
	}
	initial := &runtimev1.SubscribeRequest{Message: &runtimev1.SubscribeRequest_Initial{Initial: &runtimev1.SubscribeInitial{
		PubsubName:      pubsub,
		Topic:           topic,
		Metadata:        sc.md.m,
		DeadLetterTopic: sc.deadLetterTopic,
		MaxRedeliveries: sc.maxRedeliveries,
	}}}
	cfg := sc.stream
	attempt := ackAttempt(ackSpec[runtimev1.SubscribeRequest, runtimev1.SubscribeResponse]{
		op:      op,
		open:    c.t.subscribe,
		initial: initial,
		parse: func(m *runtimev1.SubscribeResponse) (bool, string, func(context.Context) EventStatus) {
			if m.GetReady() != nil {
				return true, "", nil
			}
			ev := m.GetEvent()
			if ev == nil {
				return false, "", nil // unknown message from a newer sidecar
			}
			e := &TopicEvent{
				ID: ev.GetId(), Source: ev.GetSource(), Type: ev.GetType(), SpecVersion: ev.GetSpecVersion(),
				DataContentType: ev.GetDataContentType(), Data: ev.GetData(), Topic: ev.GetTopic(),
				PubsubName: ev.GetPubsubName(), Path: ev.GetPath(), Metadata: ev.GetMetadata(), Attempt: int(ev.GetAttempt()),
			}
			return false, e.ID, func(ctx context.Context) EventStatus { return handler(ctx, e) }
		},
		ack: func(id string, s EventStatus) *runtimev1.SubscribeRequest {
			return &runtimev1.SubscribeRequest{Message: &runtimev1.SubscribeRequest_Ack{Ack: &runtimev1.EventAck{Id: id, Status: s.wire()}}}
		},
	}, &cfg)
	return &cfg, attempt, nil
}

// SubscribeBinding receives the events of the input binding name and calls
// handler for each, acking with its verdict. It blocks and reconnects like
// Subscribe. Options: the StreamOptions.
func (c *Client) SubscribeBinding(ctx context.Context, name string, handler BindingEventHandler, opts ...StreamOption) error {
	cfg, attempt, err := c.bindingPrepare(name, handler, opts)
	if err != nil {
		return err
	}
	return runLoop(ctx, cfg, false, attempt, nil)
}

// StartSubscribeBinding is SubscribeBinding in the background; see
// StartSubscribe.
func (c *Client) StartSubscribeBinding(ctx context.Context, name string, handler BindingEventHandler, opts ...StreamOption) (*Stream, error) {
	cfg, attempt, err := c.bindingPrepare(name, handler, opts)
	if err != nil {
		return nil, err
	}
	return startLoop(ctx, cfg, attempt)
}

func (c *Client) bindingPrepare(name string, handler BindingEventHandler, opts []StreamOption) (*streamConfig, attemptFunc, error) {
	const op = "SubscribeBinding"
	if name == "" {
		return nil, nil, invalidArg(op, "name", "is required")
	}
	if handler == nil {
		return nil, nil, invalidArg(op, "handler", "is nil")
	}
	cfg, err := collectStreamOptions(op, 1, opts)
	if err != nil {
		return nil, nil, err
	}
	initial := &runtimev1.SubscribeBindingRequest{Message: &runtimev1.SubscribeBindingRequest_Initial{
		Initial: &runtimev1.SubscribeBindingInitial{Name: name},
	}}
	attempt := ackAttempt(ackSpec[runtimev1.SubscribeBindingRequest, runtimev1.SubscribeBindingResponse]{
		op:      op,
		open:    c.t.subscribeBinding,
		initial: initial,
		parse: func(m *runtimev1.SubscribeBindingResponse) (bool, string, func(context.Context) EventStatus) {
			if m.GetReady() != nil {
				return true, "", nil
			}
			ev := m.GetEvent()
			if ev == nil {
				return false, "", nil
			}
			e := &BindingEvent{ID: ev.GetId(), Name: ev.GetName(), Data: ev.GetData(), Metadata: ev.GetMetadata()}
			return false, e.ID, func(ctx context.Context) EventStatus { return handler(ctx, e) }
		},
		ack: func(id string, s EventStatus) *runtimev1.SubscribeBindingRequest {
			return &runtimev1.SubscribeBindingRequest{Message: &runtimev1.SubscribeBindingRequest_Ack{Ack: &runtimev1.EventAck{Id: id, Status: s.wire()}}}
		},
	}, cfg)
	return cfg, attempt, nil
}

func defaultStreamConfig(concurrency int) streamConfig {
	return streamConfig{minBackoff: defaultMinBackoff, maxBackoff: defaultMaxBackoff, concurrency: concurrency}
}

func collectStreamOptions(op string, concurrency int, opts []StreamOption) (*streamConfig, error) {
	cfg := defaultStreamConfig(concurrency)
	for _, o := range opts {
		if o == nil {
			return nil, invalidArg(op, "option", "is nil")
		}
		o.applyStream(&cfg)
	}
	if cfg.err != "" {
		return nil, invalidArg(op, "option", cfg.err)
	}
	return &cfg, nil
}

// ackSpec describes an event stream acked by id (Subscribe, SubscribeBinding).
type ackSpec[Req, Resp any] struct {
	op      string
	open    func(context.Context) (bidiStream[Req, Resp], error)
	initial *Req
	// parse classifies a message: ready, or an event with its id and the
	// handler call, or neither (ignored).
	parse func(*Resp) (ready bool, id string, call func(context.Context) EventStatus)
	ack   func(id string, s EventStatus) *Req
}

// ackAttempt returns the attempt of one event stream: open, send initial,
// wait for ready, then run the handler for each event and ack it.
func ackAttempt[Req, Resp any](spec ackSpec[Req, Resp], cfg *streamConfig) attemptFunc {
	return func(parent context.Context, ready func()) error {
		ctx, cancel := context.WithCancel(parent)
		defer cancel()
		st, err := handshake(ctx, spec.op, spec.open, spec.initial, func(m *Resp) bool {
			r, _, _ := spec.parse(m)
			return r
		})
		if err != nil {
			return err
		}
		ready()
		p := newPool(cfg.concurrency)
		snd := &lockedSender[Req]{send: st.Send}
		for {
			m, err := st.Recv()
			if err != nil {
				cancel()
				p.wait()
				return recvErr(spec.op, err)
			}
			isReady, id, call := spec.parse(m)
			if isReady || call == nil {
				continue
			}
			p.run(ctx, func() {
				s := callEventHandler(ctx, spec.op, call)
				if ctx.Err() == nil {
					// A failed Send means the stream broke; Recv reports why.
					_ = snd.Send(spec.ack(id, s))
				}
			})
		}
	}
}

// handshake opens a stream, sends initial and waits for the ready message.
func handshake[Req, Resp any](ctx context.Context, op string, open func(context.Context) (bidiStream[Req, Resp], error), initial *Req, isReady func(*Resp) bool) (bidiStream[Req, Resp], error) {
	st, err := open(ctx)
	if err != nil {
		return nil, err
	}
	if err := st.Send(initial); err != nil {
		// io.EOF: the stream broke; the cause comes from Recv.
		_, rerr := st.Recv()
		if rerr == nil {
			return nil, fromRPC(op, err, nil)
		}
		return nil, recvErr(op, rerr)
	}
	first, err := st.Recv()
	if err != nil {
		return nil, recvErr(op, err)
	}
	if !isReady(first) {
		return nil, protocolErr(op, "the first message from the sidecar is not ready")
	}
	return st, nil
}

// callEventHandler runs call, answering EventRetry if it panics.
func callEventHandler(ctx context.Context, op string, call func(context.Context) EventStatus) (s EventStatus) {
	defer func() {
		if r := recover(); r != nil {
			log.Printf("outrig %s: handler panic (event will be retried): %v\n%s", op, r, debug.Stack())
			s = EventRetry
		}
	}()
	return call(ctx)
}

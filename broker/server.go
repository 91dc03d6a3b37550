package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/outrig/outrig/api/gen/outrig/broker/v1"
)

// Defaults of Options.
const (
	DefaultMaxGroupMessages = 10_000
	DefaultMaxGroupBytes    = 64 << 20
	DefaultMaxInFlight      = 64
	DefaultRedeliveryDelay  = 100 * time.Millisecond
	DefaultGroupRetention   = time.Minute
)

// Options bound the broker's memory and pace its redeliveries. A zero field
// takes its default; a negative one is an error.
type Options struct {
	// MaxGroupMessages bounds the messages one consumer group holds (queued,
	// in flight, waiting for redelivery). Default DefaultMaxGroupMessages.
	MaxGroupMessages int
	// MaxGroupBytes bounds the payload, content type, topic and metadata
	// bytes one group holds. Default DefaultMaxGroupBytes.
	MaxGroupBytes int64
	// MaxInFlight bounds the unacknowledged messages of one member (one
	// Subscribe stream). Default DefaultMaxInFlight.
	MaxInFlight int
	// RedeliveryDelay is the wait before a nacked message, or one held by a
	// member whose stream ended, is delivered again. Default
	// DefaultRedeliveryDelay.
	RedeliveryDelay time.Duration
	// GroupRetention is how long a group without any live member keeps its
	// messages (and keeps receiving new ones) before it is dropped. Default
	// DefaultGroupRetention.
	GroupRetention time.Duration
}

func (o Options) withDefaults() (Options, error) {
	switch {
	case o.MaxGroupMessages < 0:
		return o, fmt.Errorf("broker options: MaxGroupMessages %d is negative", o.MaxGroupMessages)
	case o.MaxGroupBytes < 0:
		return o, fmt.Errorf("broker options: MaxGroupBytes %d is negative", o.MaxGroupBytes)
	case o.MaxInFlight < 0:
		return o, fmt.Errorf("broker options: MaxInFlight %d is negative", o.MaxInFlight)
	case o.RedeliveryDelay < 0:
		return o, fmt.Errorf("broker options: RedeliveryDelay %s is negative", o.RedeliveryDelay)
	case o.GroupRetention < 0:
		return o, fmt.Errorf("broker options: GroupRetention %s is negative", o.GroupRetention)
	}
	if o.MaxGroupMessages == 0 {
		o.MaxGroupMessages = DefaultMaxGroupMessages
	}
	if o.MaxGroupBytes == 0 {
		o.MaxGroupBytes = DefaultMaxGroupBytes
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.RedeliveryDelay == 0 {
		o.RedeliveryDelay = DefaultRedeliveryDelay
	}
	if o.GroupRetention == 0 {
		o.GroupRetention = DefaultGroupRetention
	}
	return o, nil
}

// Server is the in-memory broker behind the outrig.broker.v1.Broker service
// (semantics in the package documentation).
//
// Lifecycle: NewServer, Register on a gRPC server, serve; Close ends every
// Subscribe stream with UNAVAILABLE, fails later calls and waits for the
// redelivery timers. Each stream's receiving goroutine ends with its stream
// (a stream blocked sending to a member that does not read ends when the
// gRPC server stops). Call Close before grpc.Server.GracefulStop, which
// would otherwise wait for the Subscribe streams forever (or use Stop).
//
// Concurrency: all methods are safe for concurrent use; one mutex guards the
// broker state and is never held while sending to or receiving from a stream.
type Server struct {
	brokerv1.UnimplementedBrokerServer

	opts Options
	now  func() time.Time

	mu     sync.Mutex
	topics map[string]*topic
	timers map[*time.Timer]struct{} // pending redeliveries
	nextID uint64                   // last delivery id
	closed bool
	done   chan struct{} // closed by Close

	wg sync.WaitGroup // pending redeliveries
}

// NewServer returns a broker with the given limits (zero fields take the
// defaults).
func NewServer(opts Options) (*Server, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Server{
		opts:   o,
		now:    time.Now,
		topics: map[string]*topic{},
		timers: map[*time.Timer]struct{}{},
		done:   make(chan struct{}),
	}, nil
}

// Register registers the Broker service on r (a *grpc.Server).
func (s *Server) Register(r grpc.ServiceRegistrar) {
	brokerv1.RegisterBrokerServer(r, s)
}

// Close ends every Subscribe stream, discards every message and waits for
// pending redelivery timers. Later calls fail with UNAVAILABLE. Idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
		for t := range s.timers {
			if t.Stop() {
				s.wg.Done()
			}
		}
		s.timers = nil
		for _, t := range s.topics {
			for _, g := range t.groups {
				g.removed = true
			}
		}
		s.topics = nil
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

var errClosed = status.Error(codes.Unavailable, "broker is shutting down")

// Publish queues req for every group subscribed to its topic.
func (s *Server) Publish(_ context.Context, req *brokerv1.PublishRequest) (*brokerv1.PublishResponse, error) {
	if req.GetTopic() == "" {
		return nil, status.Error(codes.InvalidArgument, "topic is required")
	}
	msg := newMessage(req)
	if msg.size > s.opts.MaxGroupBytes {
		return nil, status.Errorf(codes.InvalidArgument, "message of %d bytes on topic %q exceeds the broker's limit of %d bytes per consumer group", msg.size, msg.topic, s.opts.MaxGroupBytes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	t := s.topics[msg.topic]
	if t == nil {
		return &brokerv1.PublishResponse{}, nil // no group: dropped
	}
	s.expireIdleLocked(t, s.now())
	// All or nothing, so that a retried publish does not duplicate.
	for _, g := range t.groups {
		if g.count+1 > s.opts.MaxGroupMessages || g.bytes+msg.size > s.opts.MaxGroupBytes {
			return nil, status.Errorf(codes.ResourceExhausted,
				"topic %q: consumer group %q holds %d unacknowledged messages (%d bytes), limit %d messages and %d bytes: retry once its subscribers catch up",
				msg.topic, g.name, g.count, g.bytes, s.opts.MaxGroupMessages, s.opts.MaxGroupBytes)
		}
	}
	for _, g := range t.groups {
		g.ready.push(&entry{msg: msg})
		g.count++
		g.bytes += msg.size
		s.dispatchLocked(g)
	}
	return &brokerv1.PublishResponse{}, nil
}

// Subscribe serves one member of a consumer group: this goroutine sends,
// a second one receives acks.
func (s *Server) Subscribe(stream brokerv1.Broker_SubscribeServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	sub := first.GetSubscription()
	switch {
	case sub == nil:
		return status.Error(codes.InvalidArgument, "the first request of a Subscribe stream must be a subscription")
	case sub.GetTopic() == "":
		return status.Error(codes.InvalidArgument, "subscription.topic is required")
	case sub.GetGroup() == "":
		return status.Error(codes.InvalidArgument, "subscription.group is required")
	}
	m, err := s.join(sub.GetTopic(), sub.GetGroup())
	if err != nil {
		return err
	}
	defer s.leave(m)
	if err := stream.Send(&brokerv1.SubscribeResponse{Response: &brokerv1.SubscribeResponse_Subscribed{Subscribed: &brokerv1.Subscribed{}}}); err != nil {
		return err
	}
	// The receiver ends when the stream does: at the latest when this
	// handler returns and gRPC cancels the stream.
	recvDone := make(chan error, 1)
	go func() { recvDone <- s.receiveAcks(stream, m) }()
	for {
		select {
		case <-m.wake:
			for _, d := range s.take(m) {
				if err := stream.Send(d.response()); err != nil {
					return err
				}
			}
		case err := <-recvDone:
			return err
		case <-s.done:
			return errClosed
		}
	}
}

// join adds a member to the group, creating the topic and group if needed.
func (s *Server) join(topicName, groupName string) (*member, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	now := s.now()
	t := s.topics[topicName]
	if t == nil {
		t = &topic{name: topicName, groups: map[string]*group{}}
		s.topics[topicName] = t
	}
	g := t.groups[groupName]
	if g == nil {
		g = &group{name: groupName, topic: t}
		t.groups[groupName] = g
	}
	m := &member{g: g, inflight: map[uint64]*delivery{}, wake: make(chan struct{}, 1)}
	g.members = append(g.members, m)
	s.expireIdleLocked(t, now) // drops other idle groups, never g
	s.dispatchLocked(g)
	return m, nil
}

func (s *Server) leave(m *member) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || m.g.removed {
		return
	}
	s.leaveLocked(m, s.now())
}

// take returns the deliveries waiting for m's sender and marks them sent.
func (s *Server) take(m *member) []*delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := m.out
	m.out = nil
	for _, d := range out {
		d.sent = true
	}
	return out
}

// receiveAcks settles acks until the stream ends. io.EOF (the member closed
// its side) ends the stream normally.
func (s *Server) receiveAcks(stream brokerv1.Broker_SubscribeServer, m *member) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		ack := req.GetAck()
		if ack == nil {
			return status.Error(codes.InvalidArgument, "only acks may follow the subscription on a Subscribe stream")
		}
		if err := s.settle(m, ack.GetDeliveryId(), ack.GetOk()); err != nil {
			return err
		}
	}
}

// settle applies one ack of m.
func (s *Server) settle(m *member, id uint64, ok bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	d := m.inflight[id]
	if d == nil || !d.sent {
		return status.Errorf(codes.InvalidArgument, "ack.delivery_id %d: no such delivery in flight on this stream", id)
	}
	delete(m.inflight, id)
	g := m.g
	switch {
	case g.removed:
	case ok:
		g.releaseLocked(d.e)
	default:
		s.redeliverLaterLocked(g, d.e)
	}
	s.dispatchLocked(g)
	return nil
}

// GroupStats describes one consumer group of one topic.
type GroupStats struct {
	Topic string
	Group string
	// Members is the number of live Subscribe streams.
	Members int
	// Messages counts the messages the group holds: queued, in flight or
	// waiting for redelivery.
	Messages int
	// Bytes is their size as counted against MaxGroupBytes.
	Bytes int64
	// InFlight counts the messages delivered and not yet acknowledged.
	InFlight int
}

// Stats returns a snapshot of every group, sorted by topic and group.
func (s *Server) Stats() []GroupStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []GroupStats
	for _, t := range s.topics {
		for _, g := range t.groups {
			st := GroupStats{Topic: t.name, Group: g.name, Members: len(g.members), Messages: g.count, Bytes: g.bytes}
			for _, m := range g.members {
				st.InFlight += len(m.inflight)
			}
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Group < out[j].Group
	})
	return out
}

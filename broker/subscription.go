package broker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dapr/components-contrib/pubsub"
	"github.com/dapr/kit/logger"

	brokerv1 "github.com/outrig/outrig/api/gen/outrig/broker/v1"
)

// Reconnect backoff of a subscription whose stream broke.
const (
	reconnectMin = 100 * time.Millisecond
	reconnectMax = 5 * time.Second
)

// subscription is one Subscribe call of the component: a loop of stream
// sessions with the broker, reconnecting until its context ends.
type subscription struct {
	log          logger.Logger
	client       brokerv1.BrokerClient
	topic, group string
	handler      pubsub.Handler

	firstTry  chan struct{} // closed when the first session is confirmed or failed
	firstOnce sync.Once
	handlers  sync.WaitGroup // running handler calls
}

func (s *subscription) tried() { s.firstOnce.Do(func() { close(s.firstTry) }) }

// run keeps a session open until ctx ends, then waits for running handlers.
func (s *subscription) run(ctx context.Context) {
	defer s.handlers.Wait()
	defer s.tried()
	delay := reconnectMin
	for {
		confirmed, err := s.session(ctx)
		s.tried()
		if ctx.Err() != nil {
			return
		}
		if confirmed {
			delay = reconnectMin
		}
		s.log.Warnf("broker subscription to topic %q (group %q) interrupted, reconnecting: %v", s.topic, s.group, err)
		// Jitter in [delay/2, delay).
		t := time.NewTimer(delay/2 + rand.N(delay/2))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		delay = min(delay*2, reconnectMax)
	}
}

var errProtocol = errors.New("broker protocol violation")

// session runs one Subscribe stream. Handlers of this session get a context
// that ends with the session: their messages are redelivered by the broker
// once the stream is gone, and their acks could not be sent anyway.
// confirmed reports whether the broker accepted the subscription.
func (s *subscription) session(ctx context.Context) (confirmed bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.client.Subscribe(ctx)
	if err != nil {
		return false, fmt.Errorf("open stream: %w", err)
	}
	if err := stream.Send(&brokerv1.SubscribeRequest{Request: &brokerv1.SubscribeRequest_Subscription{
		Subscription: &brokerv1.Subscription{Topic: s.topic, Group: s.group},
	}}); err != nil {
		_, rerr := stream.Recv() // the status of the stream explains the failed send
		return false, fmt.Errorf("send subscription: %w", rerr)
	}
	resp, err := stream.Recv()
	if err != nil {
		return false, fmt.Errorf("await confirmation: %w", err)
	}
	if resp.GetSubscribed() == nil {
		return false, fmt.Errorf("%w: first response is not a confirmation", errProtocol)
	}
	s.tried()
	var sendMu sync.Mutex // one Send at a time; Recv runs concurrently
	for {
		resp, err := stream.Recv()
		if err != nil {
			return true, fmt.Errorf("receive: %w", err)
		}
		msg := resp.GetMessage()
		if msg == nil {
			return true, fmt.Errorf("%w: response is not a message", errProtocol)
		}
		s.handlers.Add(1)
		go func() {
			defer s.handlers.Done()
			herr := s.handler(ctx, toNewMessage(msg))
			if herr != nil {
				s.log.Debugf("broker topic %q delivery %d (attempt %d) nacked: %v", s.topic, msg.GetDeliveryId(), msg.GetAttempt(), herr)
			}
			sendMu.Lock()
			defer sendMu.Unlock()
			// A failed send means the stream is gone: the broker redelivers.
			_ = stream.Send(&brokerv1.SubscribeRequest{Request: &brokerv1.SubscribeRequest_Ack{
				Ack: &brokerv1.Ack{DeliveryId: msg.GetDeliveryId(), Ok: herr == nil},
			}})
		}()
	}
}

func toNewMessage(m *brokerv1.Message) *pubsub.NewMessage {
	out := &pubsub.NewMessage{Data: m.GetData(), Topic: m.GetTopic(), Metadata: m.GetMetadata()}
	if ct := m.GetContentType(); ct != "" {
		out.ContentType = &ct
	}
	return out
}

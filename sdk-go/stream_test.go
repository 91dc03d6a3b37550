package outrig

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

type subSession = session[runtimev1.SubscribeRequest, runtimev1.SubscribeResponse]

// fastReconnect keeps reconnect tests short.
var fastReconnect = WithReconnectBackoff(10*time.Millisecond, 50*time.Millisecond)

// nextAck waits for the app's next ack on a Subscribe stream.
func nextAck(t *testing.T, s *subSession) *runtimev1.EventAck {
	t.Helper()
	m := s.next(t)
	if m.GetAck() == nil {
		t.Fatalf("app sent %v, want an ack", m)
	}
	return m.GetAck()
}

func TestSubscribeHandshakeEventsAndAcks(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	var got []*TopicEvent
	var mu sync.Mutex
	handler := func(_ context.Context, e *TopicEvent) EventStatus {
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
		switch string(e.Data) {
		case "ok":
			return EventSuccess
		case "again":
			return EventRetry
		case "junk":
			return EventDrop
		case "panic":
			panic("handler bug")
		}
		return 0 // not a verdict: must be sent as RETRY
	}
	st, err := c.StartSubscribe(context.Background(), "events", "paid", handler,
		WithDeadLetterTopic("paid-dlq"), WithMaxRedeliveries(5), WithMetadata(map[string]string{"consumerID": "c1"}))
	if err != nil {
		t.Fatalf("StartSubscribe: %v", err)
	}
	sess := waitSession(t, ts.fake.subs)
	wantInitial := &runtimev1.SubscribeInitial{PubsubName: "events", Topic: "paid", DeadLetterTopic: "paid-dlq",
		MaxRedeliveries: 5, Metadata: map[string]string{"consumerID": "c1"}}
	if !proto.Equal(sess.first.GetInitial(), wantInitial) {
		t.Errorf("initial = %v, want %v", sess.first.GetInitial(), wantInitial)
	}

	full := &runtimev1.SubscribeResponse{Message: &runtimev1.SubscribeResponse_Event{Event: &runtimev1.TopicEvent{
		Id: "e1", Source: "checkout", Type: "com.example.paid", SpecVersion: "1.0", DataContentType: "text/plain",
		Data: []byte("ok"), Topic: "paid", PubsubName: "events", Path: "/paid", Metadata: map[string]string{"k": "v"}, Attempt: 2,
	}}}
	sess.send(t, full)
	// An unknown message (empty oneof, as from a newer sidecar) is ignored.
	sess.send(t, &runtimev1.SubscribeResponse{})
	for i, data := range []string{"again", "junk", "panic", "zero"} {
		sess.send(t, topicEvent("e"+string(rune('2'+i)), data))
	}
	want := []struct {
		id string
		s  runtimev1.EventStatus
	}{
		{"e1", runtimev1.EventStatus_EVENT_STATUS_SUCCESS},
		{"e2", runtimev1.EventStatus_EVENT_STATUS_RETRY},
		{"e3", runtimev1.EventStatus_EVENT_STATUS_DROP},
		{"e4", runtimev1.EventStatus_EVENT_STATUS_RETRY}, // panic
		{"e5", runtimev1.EventStatus_EVENT_STATUS_RETRY}, // zero value
	}
	for _, w := range want {
		ack := nextAck(t, sess)
		if ack.GetId() != w.id || ack.GetStatus() != w.s {
			t.Errorf("ack = %s %v, want %s %v", ack.GetId(), ack.GetStatus(), w.id, w.s)
		}
	}
	if err := st.Stop(); err != nil {
		t.Errorf("Stop = %v, want nil", err)
	}
	mu.Lock()
	defer mu.Unlock()
	e := got[0]
	if e.ID != "e1" || e.Source != "checkout" || e.Type != "com.example.paid" || e.SpecVersion != "1.0" ||
		e.DataContentType != "text/plain" || e.Topic != "paid" || e.PubsubName != "events" || e.Path != "/paid" ||
		e.Metadata["k"] != "v" || e.Attempt != 2 {
		t.Errorf("event = %+v", e)
	}
}

func TestSubscribeRejectedIsNotRetried(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	ts.fake.setRejectStream(status.Error(codes.NotFound, "pubsub \"nope\" not found"))
	var reconnects atomic.Int32
	start := time.Now()
	err := c.Subscribe(context.Background(), "nope", "t", func(context.Context, *TopicEvent) EventStatus { return EventSuccess },
		fastReconnect, WithReconnectHook(func(error, time.Duration) { reconnects.Add(1) }))
	if !errors.Is(err, ErrNotFound) || status.Convert(err).Message() != "pubsub \"nope\" not found" {
		t.Fatalf("Subscribe = %v, want ErrNotFound with the sidecar's message", err)
	}
	if reconnects.Load() != 0 || time.Since(start) > 2*time.Second {
		t.Errorf("reconnected %d times in %v, want none", reconnects.Load(), time.Since(start))
	}
}

func TestSubscribeProtocolViolation(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	ts.fake.mu.Lock()
	ts.fake.eventFirst = true
	ts.fake.mu.Unlock()
	_, err := c.StartSubscribe(context.Background(), "events", "paid", func(context.Context, *TopicEvent) EventStatus { return EventSuccess })
	if status.Code(err) != codes.Internal {
		t.Fatalf("StartSubscribe against a sidecar that skips ready = %v, want INTERNAL protocol error", err)
	}
}

// The sidecar restarts: Subscribe reconnects, subscribes again and keeps
// delivering; cancelling ctx then ends it with nil.
func TestSubscribeReconnectsAfterSidecarRestart(t *testing.T) {
	checkNoLeaks(t)
	fake := newFakeSidecar()
	ts := startServer(t, fake, "")
	c, err := NewClient(context.Background(), WithAddress(ts.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var reconnects atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- c.Subscribe(ctx, "events", "paid", func(context.Context, *TopicEvent) EventStatus { return EventSuccess },
			fastReconnect, WithReconnectHook(func(err error, _ time.Duration) {
				if !errors.Is(err, ErrUnavailable) {
					t.Errorf("reconnect after %v, want only UNAVAILABLE", err)
				}
				reconnects.Add(1)
			}))
	}()
	s1 := waitSession(t, fake.subs)
	s1.send(t, topicEvent("a", "x"))
	if ack := nextAck(t, s1); ack.GetId() != "a" {
		t.Fatalf("ack %v", ack)
	}

	ts.srv.Stop() // the sidecar goes away...
	startServer(t, fake, ts.path)
	s2 := waitSession(t, fake.subs) // ...and the SDK comes back by itself
	if s2.first.GetInitial().GetTopic() != "paid" {
		t.Errorf("resubscribed with %v", s2.first)
	}
	s2.send(t, topicEvent("b", "x"))
	if ack := nextAck(t, s2); ack.GetId() != "b" {
		t.Fatalf("ack after reconnect %v", ack)
	}
	if reconnects.Load() == 0 {
		t.Error("the reconnect hook was not called")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Subscribe after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe did not return after cancel")
	}
}

// The blocking form waits for a sidecar that is not up yet.
func TestSubscribeWaitsForSidecar(t *testing.T) {
	checkNoLeaks(t)
	path := filepath.Join(shortTempDir(t), "late.sock")
	c, err := NewClient(context.Background(), WithAddress("unix://"+path))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- c.Subscribe(ctx, "events", "paid", func(context.Context, *TopicEvent) EventStatus { return EventSuccess }, fastReconnect)
	}()
	time.Sleep(100 * time.Millisecond)
	fake := newFakeSidecar()
	startServer(t, fake, path)
	s := waitSession(t, fake.subs)
	s.send(t, topicEvent("a", "x"))
	nextAck(t, s)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Subscribe = %v", err)
	}
}

func TestStartSubscribeFailsFastWithoutSidecar(t *testing.T) {
	checkNoLeaks(t)
	c, err := NewClient(context.Background(), WithAddress("unix://"+filepath.Join(shortTempDir(t), "none.sock")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.StartSubscribe(ctx, "events", "paid", func(context.Context, *TopicEvent) EventStatus { return EventSuccess })
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("StartSubscribe without sidecar = %v, want ErrUnavailable", err)
	}
}

func TestSubscribeWithoutReconnectReturnsFailure(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	done := make(chan error, 1)
	go func() {
		done <- c.Subscribe(context.Background(), "events", "paid",
			func(context.Context, *TopicEvent) EventStatus { return EventSuccess }, WithoutReconnect())
	}()
	s := waitSession(t, ts.fake.subs)
	s.end <- status.Error(codes.Unavailable, "sidecar shutting down")
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("Subscribe = %v, want ErrUnavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe did not return")
	}
}

// Closing the Client ends a running loop with an error instead of retrying.
func TestCloseEndsSubscribe(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	st, err := c.StartSubscribe(context.Background(), "events", "paid", func(context.Context, *TopicEvent) EventStatus { return EventSuccess }, fastReconnect)
	if err != nil {
		t.Fatal(err)
	}
	waitSession(t, ts.fake.subs)
	_ = c.Close()
	select {
	case <-st.Done():
		if st.Err() == nil {
			t.Error("loop ended without error after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("loop still running after Close")
	}
}

// With n concurrent handlers, exactly n run at once; all events are acked.
func TestSubscribeConcurrencyBound(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	const n, events = 3, 7
	var running, peak atomic.Int32
	gate := make(chan struct{})
	reached := make(chan struct{}, events)
	handler := func(context.Context, *TopicEvent) EventStatus {
		cur := running.Add(1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		reached <- struct{}{}
		<-gate
		running.Add(-1)
		return EventSuccess
	}
	st, err := c.StartSubscribe(context.Background(), "events", "paid", handler, WithMaxConcurrentHandlers(n))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()
	s := waitSession(t, ts.fake.subs)
	go func() {
		for i := range events {
			select {
			case s.push <- topicEvent(string(rune('a'+i)), "x"):
			case <-s.done:
				return
			}
		}
	}()
	for range n {
		<-reached
	}
	time.Sleep(100 * time.Millisecond) // give a wrong implementation time to start more
	if p := peak.Load(); p != n {
		t.Errorf("peak concurrency %d, want %d", p, n)
	}
	close(gate)
	seen := map[string]bool{}
	for range events {
		seen[nextAck(t, s).GetId()] = true
	}
	if len(seen) != events {
		t.Errorf("acked %d distinct events, want %d", len(seen), events)
	}
}

// Stop cancels the context of running handlers, waits for them, and sends
// no verdict for them (the sidecar will redeliver).
func TestStopCancelsAndWaitsForHandlers(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	started := make(chan struct{})
	var finished atomic.Bool
	st, err := c.StartSubscribe(context.Background(), "events", "paid", func(ctx context.Context, _ *TopicEvent) EventStatus {
		close(started)
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond)
		finished.Store(true)
		return EventSuccess
	})
	if err != nil {
		t.Fatal(err)
	}
	s := waitSession(t, ts.fake.subs)
	s.send(t, topicEvent("a", "x"))
	<-started
	if err := st.Stop(); err != nil {
		t.Errorf("Stop = %v", err)
	}
	if !finished.Load() {
		t.Error("Stop returned before the handler did")
	}
	select {
	case m := <-s.got:
		t.Errorf("verdict sent after Stop: %v", m)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestSubscribeBinding(t *testing.T) {
	checkNoLeaks(t)
	c, ts := newTestClient(t)
	var got *BindingEvent
	st, err := c.StartSubscribeBinding(context.Background(), "kafka-in", func(_ context.Context, e *BindingEvent) EventStatus {
		got = e
		return EventDrop
	})
	if err != nil {
		t.Fatal(err)
	}
	s := waitSession(t, ts.fake.bindings)
	if s.first.GetInitial().GetName() != "kafka-in" {
		t.Errorf("initial = %v", s.first)
	}
	s.send(t, &runtimev1.SubscribeBindingResponse{Message: &runtimev1.SubscribeBindingResponse_Event{Event: &runtimev1.BindingEvent{
		Id: "b1", Name: "kafka-in", Data: []byte("d"), Metadata: map[string]string{"offset": "4"},
	}}})
	ack := s.next(t).GetAck()
	if ack.GetId() != "b1" || ack.GetStatus() != runtimev1.EventStatus_EVENT_STATUS_DROP {
		t.Errorf("ack = %v", ack)
	}
	if err := st.Stop(); err != nil {
		t.Error(err)
	}
	if got.ID != "b1" || got.Name != "kafka-in" || string(got.Data) != "d" || got.Metadata["offset"] != "4" {
		t.Errorf("event = %+v", got)
	}
}

package pubsub

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dapr/components-contrib/metadata"
	cpubsub "github.com/dapr/components-contrib/pubsub"
	pmemory "github.com/dapr/components-contrib/pubsub/in-memory"
	"github.com/dapr/kit/logger"
	"go.uber.org/goleak"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fc is a test consumer; a pointer, as real consumers are, so it compares.
type fc struct {
	f func(ctx context.Context, ev *runtimev1.TopicEvent) (runtimev1.EventStatus, error)
}

func (c *fc) Deliver(ctx context.Context, ev *runtimev1.TopicEvent) (runtimev1.EventStatus, error) {
	return c.f(ctx, ev)
}

func funcConsumer(f func(ctx context.Context, ev *runtimev1.TopicEvent) (runtimev1.EventStatus, error)) Consumer {
	return &fc{f: f}
}

func setup(t *testing.T) (*PubSub, *Manager) {
	t.Helper()
	impl := pmemory.New(logger.NewLogger("test"))
	if err := impl.Init(context.Background(), cpubsub.Metadata{Base: metadata.Base{Name: "bus"}}); err != nil {
		t.Fatal(err)
	}
	ps := New("bus", "pubsub.in-memory", "app", impl)
	m := NewManager("app", slog.New(slog.DiscardHandler))
	m.Backoff = func(int) time.Duration { return time.Millisecond }
	m.AckTimeout = 2 * time.Second
	t.Cleanup(func() { m.Close(); _ = ps.Close() })
	if err := m.Update(map[string]*PubSub{"bus": ps}, nil); err != nil {
		t.Fatal(err)
	}
	return ps, m
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDeliverSuccessAndCloudEvent(t *testing.T) {
	ps, m := setup(t)
	got := make(chan *runtimev1.TopicEvent, 1)
	detach, err := m.Attach(Key{"bus", "orders"}, SubOptions{}, funcConsumer(func(_ context.Context, ev *runtimev1.TopicEvent) (runtimev1.EventStatus, error) {
		got <- ev
		return runtimev1.EventStatus_EVENT_STATUS_SUCCESS, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer detach()
	if err := ps.Publish(context.Background(), Message{Topic: "orders", Data: []byte(`{"n":1}`), ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		if string(ev.Data) != `{"n":1}` || ev.SpecVersion != "1.0" || ev.Source != "app" || ev.Id == "" || ev.Attempt != 1 {
			t.Fatalf("event = %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("event not delivered")
	}
}

func TestRetryThenDeadLetterAndDrop(t *testing.T) {
	ps, m := setup(t)
	var attempts atomic.Int32
	detach, err := m.Attach(Key{"bus", "work"}, SubOptions{DeadLetterTopic: "work-dead", MaxRedeliveries: 2},
		funcConsumer(func(_ context.Context, ev *runtimev1.TopicEvent) (runtimev1.EventStatus, error) {
			attempts.Add(1)
			if string(ev.Data) == `"drop"` {
				return runtimev1.EventStatus_EVENT_STATUS_DROP, nil
			}
			return runtimev1.EventStatus_EVENT_STATUS_RETRY, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer detach()
	dead := make(chan *runtimev1.TopicEvent, 4)
	detachDead, err := m.Attach(Key{"bus", "work-dead"}, SubOptions{}, funcConsumer(func(_ context.Context, ev *runtimev1.TopicEvent) (runtimev1.EventStatus, error) {
		dead <- ev
		return runtimev1.EventStatus_EVENT_STATUS_SUCCESS, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer detachDead()

	if err := ps.Publish(context.Background(), Message{Topic: "work", Data: []byte(`"retry me"`), ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-dead:
		if string(ev.Data) != `"retry me"` {
			t.Fatalf("dead-lettered event data = %s", ev.Data)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("event did not reach the dead-letter topic")
	}
	if n := attempts.Load(); n != 3 {
		t.Fatalf("deliveries = %d, want 3 (1 + 2 redeliveries)", n)
	}

	attempts.Store(0)
	if err := ps.Publish(context.Background(), Message{Topic: "work", Data: []byte(`"drop"`), ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "drop delivery", func() bool { return attempts.Load() == 1 })
	time.Sleep(100 * time.Millisecond)
	if n := attempts.Load(); n != 1 {
		t.Fatalf("dropped event delivered %d times, want 1", n)
	}
	select {
	case ev := <-dead:
		t.Fatalf("dropped event was dead-lettered: %+v", ev)
	default:
	}
}

func TestRoundRobinAcrossStreamsAndRouting(t *testing.T) {
	ps, m := setup(t)
	sub := &configv1.Subscription{Name: "s", PubsubName: "bus", Topic: "t", DefaultRoute: "/default",
		Rules: []*configv1.RouteRule{{Match: `event.type == "refund"`, Path: "/refunds"}}}
	if err := m.Update(map[string]*PubSub{"bus": ps}, []*configv1.Subscription{sub}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	perConsumer := map[int]int{}
	paths := map[string]int{}
	mk := func(i int) Consumer {
		return funcConsumer(func(_ context.Context, ev *runtimev1.TopicEvent) (runtimev1.EventStatus, error) {
			mu.Lock()
			perConsumer[i]++
			paths[ev.Path]++
			mu.Unlock()
			return runtimev1.EventStatus_EVENT_STATUS_SUCCESS, nil
		})
	}
	d1, _ := m.Attach(Key{"bus", "t"}, SubOptions{}, mk(1))
	d2, _ := m.Attach(Key{"bus", "t"}, SubOptions{}, mk(2))
	defer d1()
	defer d2()
	for i := 0; i < 10; i++ {
		md := map[string]string{}
		if i%2 == 0 {
			md[MetaCEType] = "refund"
		}
		if err := ps.Publish(context.Background(), Message{Topic: "t", Data: []byte(`1`), ContentType: "application/json", Metadata: md}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "10 deliveries", func() bool { mu.Lock(); defer mu.Unlock(); return perConsumer[1]+perConsumer[2] == 10 })
	if perConsumer[1] != 5 || perConsumer[2] != 5 {
		t.Fatalf("round robin split = %v, want 5/5", perConsumer)
	}
	if paths["/refunds"] != 5 || paths["/default"] != 5 {
		t.Fatalf("routes = %v, want 5 /refunds and 5 /default", paths)
	}
}

func TestAttachUnknownPubSub(t *testing.T) {
	_, m := setup(t)
	if _, err := m.Attach(Key{"nope", "t"}, SubOptions{}, funcConsumer(nil)); err == nil {
		t.Fatal("attach to unknown pubsub succeeded")
	}
}

func TestRouterRejectsBadMatch(t *testing.T) {
	for _, expr := range []string{`type == "x"`, `event.color == "red"`, `event.type == x`, `event.type`} {
		if _, err := NewRouter(&configv1.Subscription{Rules: []*configv1.RouteRule{{Match: expr, Path: "/p"}}}); err == nil {
			t.Errorf("match %q accepted", expr)
		}
	}
}

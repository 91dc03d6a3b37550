package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dapr/components-contrib/metadata"
	"github.com/dapr/components-contrib/pubsub"
	"github.com/dapr/kit/logger"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outrig/outrig/errkind"
)

func TestInitValidatesMetadata(t *testing.T) {
	for _, tc := range []struct {
		props map[string]string
		want  string
	}{
		{map[string]string{}, "brokerAddress is required"},
		{map[string]string{"brokerAddress": "  "}, "brokerAddress is required"},
		{map[string]string{"brokerAddress": "localhost"}, `brokerAddress "localhost" is not host:port`},
		{map[string]string{"brokerAddress": "localhost:"}, `brokerAddress "localhost:" is not host:port`},
	} {
		c := NewPubSub(logger.NewLogger("broker-test"))
		md := pubsub.Metadata{}
		md.Properties = tc.props
		err := c.Init(context.Background(), md)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Init(%v) = %v, want error containing %q", tc.props, err, tc.want)
		}
		if err := c.Close(); err != nil {
			t.Errorf("Close after failed Init: %v", err)
		}
	}
}

func TestSubscribeNeedsConsumerID(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{})
	c := newComponent(t, b.addr, "")
	err := c.Subscribe(context.Background(), pubsub.SubscribeRequest{Topic: "t"}, newRecorder().handler)
	if !errors.Is(err, errkind.ErrInvalidArgument) || !strings.Contains(err.Error(), "consumerID") {
		t.Fatalf("err = %v, want invalid argument naming consumerID", err)
	}
	publish(t, c, "t", "publishing needs no consumer group")
}

func TestMetadataKeysAreCaseInsensitiveAndDescribed(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{})
	c := NewPubSub(logger.NewLogger("broker-test"))
	t.Cleanup(func() { _ = c.Close() })
	md := pubsub.Metadata{}
	md.Properties = map[string]string{"BROKERADDRESS": b.addr, "consumerid": "app"}
	if err := c.Init(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	if err := c.Subscribe(context.Background(), pubsub.SubscribeRequest{Topic: "t"}, rec.handler); err != nil {
		t.Fatal(err)
	}
	if st := b.group("t", "app"); st.Members != 1 {
		t.Fatalf("after Subscribe returned: %+v, want group app live", b.Stats())
	}
	meta := c.(interface{ GetComponentMetadata() metadata.MetadataMap }).GetComponentMetadata()
	for _, k := range []string{MetadataBrokerAddress, MetadataConsumerID} {
		if _, ok := meta[k]; !ok {
			t.Errorf("GetComponentMetadata() = %v, missing %s", meta, k)
		}
	}
}

func TestFanOutToGroups(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{})
	orders, billing := newRecorder(), newRecorder()
	for _, s := range []struct {
		group string
		rec   *recorder
	}{{"orders", orders}, {"billing", billing}} {
		c := newComponent(t, b.addr, s.group)
		if err := c.Subscribe(context.Background(), pubsub.SubscribeRequest{Topic: "paid"}, s.rec.handler); err != nil {
			t.Fatal(err)
		}
	}
	pub := newComponent(t, b.addr, "publisher")
	ct := "application/json"
	if err := pub.Publish(context.Background(), &pubsub.PublishRequest{Topic: "paid", Data: []byte(`{"n":0}`), ContentType: &ct, Metadata: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 20; i++ {
		publish(t, pub, "paid", fmt.Sprintf(`{"n":%d}`, i))
	}
	for name, rec := range map[string]*recorder{"orders": orders, "billing": billing} {
		eventually(t, func() bool { return rec.total() >= 20 }, "group %s to get 20 events (has %d)", name, rec.total())
		for k, n := range rec.counts() {
			if n != 1 {
				t.Errorf("group %s got %s %d times", name, k, n)
			}
		}
		if len(rec.counts()) != 20 {
			t.Errorf("group %s got %d distinct events, want 20", name, len(rec.counts()))
		}
	}
}

func TestMessageFieldsReachHandler(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{})
	c := newComponent(t, b.addr, "app")
	got := make(chan *pubsub.NewMessage, 1)
	if err := c.Subscribe(context.Background(), pubsub.SubscribeRequest{Topic: "t"}, func(_ context.Context, m *pubsub.NewMessage) error {
		got <- m
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ct := "application/cloudevents+json"
	if err := c.Publish(context.Background(), &pubsub.PublishRequest{Topic: "t", Data: []byte("x"), ContentType: &ct, Metadata: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.Topic != "t" || string(m.Data) != "x" || m.ContentType == nil || *m.ContentType != ct || m.Metadata["k"] != "v" {
			t.Fatalf("handler got %v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
}

func TestLoadSharingWithinGroup(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{})
	a, c := newRecorder(), newRecorder()
	for _, rec := range []*recorder{a, c} { // two instances of one app
		comp := newComponent(t, b.addr, "checkout")
		if err := comp.Subscribe(context.Background(), pubsub.SubscribeRequest{Topic: "orders"}, rec.handler); err != nil {
			t.Fatal(err)
		}
	}
	b.waitMembers(t, "orders", "checkout", 2)
	pub := newComponent(t, b.addr, "publisher")
	const n = 200
	for i := range n {
		publish(t, pub, "orders", fmt.Sprint(i))
	}
	eventually(t, func() bool { return a.total()+c.total() >= n }, "%d events (have %d + %d)", n, a.total(), c.total())
	eventually(t, func() bool { return b.group("orders", "checkout").Messages == 0 }, "all acks applied")
	if a.total() == 0 || c.total() == 0 {
		t.Fatalf("one instance got nothing: %d and %d", a.total(), c.total())
	}
	seen := map[string]int{}
	for _, rec := range []*recorder{a, c} {
		for k, v := range rec.counts() {
			seen[k] += v
		}
	}
	for i := range n {
		if seen[fmt.Sprint(i)] != 1 {
			t.Fatalf("event %d delivered %d times across the group, want once", i, seen[fmt.Sprint(i)])
		}
	}
	t.Logf("shared: %d / %d", a.total(), c.total())
}

func TestNackRedelivers(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{RedeliveryDelay: 100 * time.Millisecond})
	c := newComponent(t, b.addr, "app")
	var mu sync.Mutex
	var times []time.Time
	if err := c.Subscribe(context.Background(), pubsub.SubscribeRequest{Topic: "t"}, func(context.Context, *pubsub.NewMessage) error {
		mu.Lock()
		defer mu.Unlock()
		times = append(times, time.Now())
		if len(times) < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	publish(t, c, "t", "once")
	eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(times) >= 3 }, "three attempts")
	eventually(t, func() bool { return b.group("t", "app").Messages == 0 }, "the ack to be applied")
	time.Sleep(150 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 3 {
		t.Fatalf("%d attempts, want 3 (nack, nack, ack)", len(times))
	}
	for i := 1; i < 3; i++ {
		if gap := times[i].Sub(times[i-1]); gap < 90*time.Millisecond {
			t.Errorf("redelivery %d after %s, want at least the 100ms delay", i, gap)
		}
	}
}

func TestStoppedSubscriberInFlightGoesToOtherMember(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{RedeliveryDelay: 20 * time.Millisecond})
	// Instance 1 takes messages and hangs on them until it is stopped.
	stuck := newComponent(t, b.addr, "app")
	var held atomic.Int32
	stuckCtx, stopStuck := context.WithCancel(context.Background())
	if err := stuck.Subscribe(stuckCtx, pubsub.SubscribeRequest{Topic: "t"}, func(ctx context.Context, _ *pubsub.NewMessage) error {
		held.Add(1)
		<-ctx.Done()
		return ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	pub := newComponent(t, b.addr, "publisher")
	const n = 10
	for i := range n {
		publish(t, pub, "t", fmt.Sprint(i))
	}
	eventually(t, func() bool { return held.Load() == n }, "instance 1 to hold all %d (holds %d)", n, held.Load())
	healthy := newRecorder()
	other := newComponent(t, b.addr, "app")
	if err := other.Subscribe(context.Background(), pubsub.SubscribeRequest{Topic: "t"}, healthy.handler); err != nil {
		t.Fatal(err)
	}
	stopStuck()
	eventually(t, func() bool { return len(healthy.counts()) == n }, "instance 2 to get all %d (has %v)", n, healthy.counts())
	eventually(t, func() bool { st := b.group("t", "app"); return st.Messages == 0 && st.Members == 1 }, "group drained with one member")
}

func TestPublishToFullGroupIsResourceExhausted(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{MaxGroupMessages: 5})
	slow := newComponent(t, b.addr, "slow")
	release := make(chan struct{})
	if err := slow.Subscribe(context.Background(), pubsub.SubscribeRequest{Topic: "t"}, func(ctx context.Context, _ *pubsub.NewMessage) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}); err != nil {
		t.Fatal(err)
	}
	pub := newComponent(t, b.addr, "publisher")
	for i := range 5 {
		publish(t, pub, "t", fmt.Sprint(i))
	}
	err := pub.Publish(context.Background(), &pubsub.PublishRequest{Topic: "t", Data: []byte("6th")})
	if !errors.Is(err, errkind.ErrResourceExhausted) || status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "limit 5 messages") {
		t.Fatalf("err = %v, want RESOURCE_EXHAUSTED stating the limit", err)
	}
	close(release)
	eventually(t, func() bool { return b.group("t", "slow").Messages == 0 }, "slow group to drain")
	publish(t, pub, "t", "after draining")
}

func TestThousandEventsAllDelivered(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{})
	groups := map[string][]*recorder{"a": {newRecorder(), newRecorder()}, "b": {newRecorder()}}
	for g, recs := range groups {
		for _, rec := range recs {
			c := newComponent(t, b.addr, g)
			if err := c.Subscribe(context.Background(), pubsub.SubscribeRequest{Topic: "t"}, rec.handler); err != nil {
				t.Fatal(err)
			}
		}
	}
	pub := newComponent(t, b.addr, "publisher")
	const n = 1000
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 4 { // concurrent publishers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				if err := pub.Publish(context.Background(), &pubsub.PublishRequest{Topic: "t", Data: []byte(fmt.Sprint(i))}); err != nil {
					t.Errorf("publish %d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	published := time.Since(start)
	for g, recs := range groups {
		eventually(t, func() bool {
			total := 0
			for _, r := range recs {
				total += r.total()
			}
			return total >= n
		}, "group %s to get %d", g, n)
		seen := map[string]int{}
		for _, r := range recs {
			for k, v := range r.counts() {
				seen[k] += v
			}
		}
		for i := range n {
			if seen[fmt.Sprint(i)] != 1 {
				t.Fatalf("group %s: event %d delivered %d times, want once", g, i, seen[fmt.Sprint(i)])
			}
		}
	}
	t.Logf("%d events to 2 groups (3 subscribers): published in %s, all delivered and acked in %s", n, published, time.Since(start))
}

func TestSubscriptionReconnectsAfterBrokerRestart(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{})
	addr := b.addr
	sub := newComponent(t, addr, "app")
	rec := newRecorder()
	if err := sub.Subscribe(context.Background(), pubsub.SubscribeRequest{Topic: "t"}, rec.handler); err != nil {
		t.Fatal(err)
	}
	pub := newComponent(t, addr, "publisher")
	publish(t, pub, "t", "before")
	eventually(t, func() bool { return rec.total() == 1 }, "first event")

	b.stop()
	if err := pub.Publish(context.Background(), &pubsub.PublishRequest{Topic: "t", Data: []byte("down")}); !errors.Is(err, errkind.ErrUnavailable) {
		t.Fatalf("publish with the broker down: %v, want unavailable", err)
	}
	b2 := startBroker(t, addr, Options{}) // same address, fresh state
	b2.waitMembers(t, "t", "app", 1)
	// The publisher's connection may still be in its reconnect backoff
	// (publishes fail fast with UNAVAILABLE meanwhile, as the sidecar expects).
	eventually(t, func() bool {
		return pub.Publish(context.Background(), &pubsub.PublishRequest{Topic: "t", Data: []byte("after")}) == nil
	}, "publish to succeed after the restart")
	eventually(t, func() bool { return rec.counts()["after"] == 1 }, "event after the restart (got %v)", rec.counts())
}

func TestSubscribeWithBrokerDownReturnsAndConnectsLater(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close() // nothing listens there yet
	c := newComponent(t, addr, "app")
	rec := newRecorder()
	start := time.Now()
	if err := c.Subscribe(context.Background(), pubsub.SubscribeRequest{Topic: "t"}, rec.handler); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Subscribe took %s with the broker down, want prompt return", d)
	}
	b := startBroker(t, addr, Options{})
	b.waitMembers(t, "t", "app", 1)
	publish(t, c, "t", "x")
	eventually(t, func() bool { return rec.total() == 1 }, "the event")
}

func TestCancelledSubscriptionLeavesGroup(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", Options{})
	c := newComponent(t, b.addr, "app")
	ctx, cancel := context.WithCancel(context.Background())
	if err := c.Subscribe(ctx, pubsub.SubscribeRequest{Topic: "t"}, newRecorder().handler); err != nil {
		t.Fatal(err)
	}
	b.waitMembers(t, "t", "app", 1)
	cancel()
	b.waitMembers(t, "t", "app", 0)
}

func TestCloseStopsEverything(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv, err := NewServer(Options{})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &testBroker{Server: srv, addr: lis.Addr().String()}
	b.gs = newGRPCServer(srv)
	served := make(chan struct{})
	go func() { defer close(served); _ = b.gs.Serve(lis) }()

	c := NewPubSub(logger.NewLogger("broker-test"))
	md := pubsub.Metadata{}
	md.Properties = map[string]string{MetadataBrokerAddress: b.addr, MetadataConsumerID: "app"}
	if err := c.Init(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{}, 1)
	if err := c.Subscribe(context.Background(), pubsub.SubscribeRequest{Topic: "t"}, func(ctx context.Context, _ *pubsub.NewMessage) error {
		entered <- struct{}{}
		<-ctx.Done() // a handler busy at Close
		return ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(context.Background(), &pubsub.PublishRequest{Topic: "t"}); err != nil {
		t.Fatal(err)
	}
	<-entered
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(context.Background(), &pubsub.PublishRequest{Topic: "t"}); !errors.Is(err, errkind.ErrUnavailable) {
		t.Fatalf("publish after Close: %v", err)
	}
	if err := c.Subscribe(context.Background(), pubsub.SubscribeRequest{Topic: "t"}, newRecorder().handler); err == nil {
		t.Fatal("subscribe after Close succeeded")
	}
	b.stop()
	<-served
}

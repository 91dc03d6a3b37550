package rocketmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/dapr/components-contrib/metadata"
	cpubsub "github.com/dapr/components-contrib/pubsub"
	"github.com/dapr/kit/logger"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

// The tests below the table tests use the RocketMQ of scripts/backends.sh
// (name server 127.0.0.1:9876), with topics and groups unique to the run;
// it must be up (they fail otherwise).
const nameServer = "127.0.0.1:9876"

func TestParseSettings(t *testing.T) {
	tests := []struct {
		name    string
		props   map[string]string
		check   func(t *testing.T, s *settings)
		wantErr string
	}{
		{"groups default to consumerID", map[string]string{"nameServer": "a:1;b:2", "consumerID": "checkout"}, func(t *testing.T, s *settings) {
			if s.ConsumerGroup != "checkout" || s.ProducerGroup != "checkout" {
				t.Errorf("groups %q %q, want checkout", s.ConsumerGroup, s.ProducerGroup)
			}
			if d := cmp.Diff(primitive.NamesrvAddr{"a:1", "b:2"}, s.nameServers()); d != "" {
				t.Errorf("name servers: %s", d)
			}
			if s.sendTimeout() != defaultSendTimeout || s.orderly() {
				t.Errorf("defaults: send timeout %v orderly %v", s.sendTimeout(), s.orderly())
			}
		}, ""},
		{"explicit groups and contrib spellings", map[string]string{"nameServer": "a:1", "consumerID": "x", "groupName": "g",
			"consumerGroup": "c", "queueSelector": "hash", "consumerBatchSize": "7", "sendTimeOutSec": "2", "consumeOrderly": "true"}, func(t *testing.T, s *settings) {
			if s.ConsumerGroup != "c" || s.ProducerGroup != "g" || s.ProducerQueueSelector != "hash" || s.PullBatchSize != 7 ||
				s.sendTimeout() != 2*time.Second || !s.orderly() {
				t.Errorf("settings %+v", s)
			}
		}, ""},
		{"name server required", map[string]string{"consumerID": "x"}, nil, "nameServer"},
		{"group required", map[string]string{"nameServer": "a:1"}, nil, "consumerGroup"},
		{"bad selector", map[string]string{"nameServer": "a:1", "consumerID": "x", "producerQueueSelector": "nearest"}, nil, "producerQueueSelector"},
		{"bad fromWhere", map[string]string{"nameServer": "a:1", "consumerID": "x", "fromWhere": "yesterday"}, nil, "fromWhere"},
		{"bad model", map[string]string{"nameServer": "a:1", "consumerID": "x", "consumerModel": "shared"}, nil, "consumerModel"},
		{"bad number", map[string]string{"nameServer": "a:1", "consumerID": "x", "retries": "many"}, nil, "retries"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseSettings(tc.props)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

func TestNewMessage(t *testing.T) {
	ct := "text/plain"
	m := NewMessage("orders", []byte("x"), &ct, map[string]string{
		MetaTag: "blue", MetaKeys: "k1,k2", MetaPartition: "order-7", "traceid": "t1",
	})
	got := map[string]string{"tag": m.GetTags(), "keys": strings.Join(strings.Fields(m.GetKeys()), " "), "sharding": m.GetShardingKey(),
		"traceid": m.GetProperty("traceid"), "ct": m.GetProperty(propContentType)}
	want := map[string]string{"tag": "blue", "keys": "k1 k2", "sharding": "order-7", "traceid": "t1", "ct": "text/plain"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("message (-want +got):\n%s", d)
	}
	// rocketmq-shardingkey wins over partitionKey.
	m = NewMessage("orders", nil, nil, map[string]string{MetaPartition: "p", MetaShardingKey: "s"})
	if m.GetShardingKey() != "s" {
		t.Errorf("sharding key %q, want s", m.GetShardingKey())
	}
}

func TestKeySelector(t *testing.T) {
	qs := make([]*primitive.MessageQueue, 8)
	for i := range qs {
		qs[i] = &primitive.MessageQueue{Topic: "t", BrokerName: "b", QueueId: i}
	}
	sel := newKeySelector()
	keyed := primitive.NewMessage("t", nil).WithShardingKey("order-1")
	first := sel.Select(keyed, qs)
	for range 10 {
		if q := sel.Select(keyed, qs); q != first {
			t.Fatalf("one sharding key went to queues %d and %d", first.QueueId, q.QueueId)
		}
	}
	pinned := primitive.NewMessage("t", nil)
	pinned.WithProperty(MetaQueue, "5")
	if q := sel.Select(pinned, qs); q.QueueId != 5 {
		t.Errorf("rocketmq-queue 5 selected queue %d", q.QueueId)
	}
	seen := map[int]bool{}
	for range 8 {
		seen[sel.Select(primitive.NewMessage("t", nil), qs).QueueId] = true
	}
	if len(seen) != 8 {
		t.Errorf("round robin over 8 queues used %d", len(seen))
	}
}

// newPubSub initialises the component against the shared RocketMQ.
func newPubSub(t *testing.T, group string, extra map[string]string) *PubSub {
	t.Helper()
	props := map[string]string{"nameServer": nameServer, "consumerID": group, "logLevel": "error"}
	for k, v := range extra {
		props[k] = v
	}
	p := New(logger.NewLogger("test")).(*PubSub)
	if err := p.Init(context.Background(), cpubsub.Metadata{Base: metadata.Base{Name: "mq", Properties: props}}); err != nil {
		t.Fatalf("Init (run `scripts/backends.sh up rocketmq`): %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// inbox records handled messages by body.
type inbox struct {
	mu   sync.Mutex
	msgs map[string]*cpubsub.NewMessage
}

func (in *inbox) handler(_ context.Context, m *cpubsub.NewMessage) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.msgs == nil {
		in.msgs = map[string]*cpubsub.NewMessage{}
	}
	in.msgs[string(m.Data)] = m
	return nil
}

func (in *inbox) get(body string) *cpubsub.NewMessage {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.msgs[body]
}

// publishUntil publishes bodies "<prefix>-<n>" until the inbox has one or d passes;
// it returns the first body received.
func publishUntil(t *testing.T, p *PubSub, topic, prefix string, in *inbox, d time.Duration) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	for i := 0; time.Since(start) < d; i++ {
		body := prefix + "-" + string(rune('a'+i%26))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := p.Publish(ctx, &cpubsub.PublishRequest{Topic: topic, Data: []byte(body)}); err != nil {
			t.Logf("publish: %v", err)
		}
		cancel()
		for w := time.Now().Add(200 * time.Millisecond); time.Now().Before(w); time.Sleep(10 * time.Millisecond) {
			in.mu.Lock()
			for b := range in.msgs {
				if strings.HasPrefix(b, prefix+"-") {
					in.mu.Unlock()
					return b, time.Since(start)
				}
			}
			in.mu.Unlock()
		}
	}
	t.Fatalf("%s: nothing received within %v", topic, d)
	return "", 0
}

// A subscription made before its topic exists receives once a publisher
// created it (contrib's component never does).
func TestSubscribeBeforeTheTopicExists(t *testing.T) {
	p := newPubSub(t, unique("rmqtest"), nil)
	topic := unique("rmqtest-fresh")
	in := &inbox{}
	if err := p.Subscribe(t.Context(), cpubsub.SubscribeRequest{Topic: topic}, in.handler); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the subscription waits for the topic meanwhile
	// Every message of the topic was published after the subscription: the
	// ones sent before the consumer found the topic arrive too, from every
	// queue (the first publish creates the topic).
	start := time.Now()
	bodies := make([]string, 8)
	for i := range bodies {
		bodies[i] = fmt.Sprintf("first-%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := p.Publish(ctx, &cpubsub.PublishRequest{Topic: topic, Data: []byte(bodies[i])}); err != nil {
			t.Fatalf("publish %s: %v", bodies[i], err)
		}
		cancel()
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, b := range bodies {
		for in.get(b) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("%s: published into the new topic, not received within 20s", b)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("all %d messages received %v after the first publish", len(bodies), time.Since(start).Round(time.Millisecond))
}

// A topic subscribed while the consumer runs receives within seconds, and a
// cancelled subscription stops receiving.
func TestLateSubscriptionAndCancel(t *testing.T) {
	p := newPubSub(t, unique("rmqtest"), nil)
	a, b := unique("rmqtest-a"), unique("rmqtest-b")
	inA, inB := &inbox{}, &inbox{}
	ctxA, cancelA := context.WithCancel(t.Context())
	defer cancelA()
	if err := p.Subscribe(ctxA, cpubsub.SubscribeRequest{Topic: a}, inA.handler); err != nil {
		t.Fatal(err)
	}
	publishUntil(t, p, a, "a", inA, 20*time.Second)
	// b exists before it is subscribed (a publish created it).
	if err := p.Publish(t.Context(), &cpubsub.PublishRequest{Topic: b, Data: []byte("create")}); err != nil {
		t.Fatal(err)
	}
	if err := p.Subscribe(t.Context(), cpubsub.SubscribeRequest{Topic: b}, inB.handler); err != nil {
		t.Fatal(err)
	}
	_, took := publishUntil(t, p, b, "b", inB, 10*time.Second)
	t.Logf("late subscription received %v after it was made", took)

	cancelA()
	time.Sleep(2 * time.Second) // the consumer is replaced without a
	ct := "text/plain"
	if err := p.Publish(t.Context(), &cpubsub.PublishRequest{Topic: a, Data: []byte("after-cancel"), ContentType: &ct,
		Metadata: map[string]string{MetaTag: "blue", "partitionKey": "k"}}); err != nil {
		t.Fatal(err)
	}
	// b keeps receiving; a's message is not handed to the cancelled handler.
	publishUntil(t, p, b, "b2", inB, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	if m := inA.get("after-cancel"); m != nil {
		t.Errorf("a message reached a cancelled subscription: %+v", m)
	}

	// A new subscription of a gets it, as it was published.
	inA2 := &inbox{}
	if err := p.Subscribe(t.Context(), cpubsub.SubscribeRequest{Topic: a}, inA2.handler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for inA2.get("after-cancel") == nil {
		if time.Now().After(deadline) {
			t.Fatal("the message published while a was not subscribed never reached its next subscription")
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := inA2.get("after-cancel")
	if m.Topic != a || m.ContentType == nil || *m.ContentType != "text/plain" || m.Metadata[MetaTag] != "blue" || m.Metadata[MetaShardingKey] != "k" {
		t.Errorf("received %+v (content type %v), want topic %s, text/plain, tag blue, sharding key k", m, m.ContentType, a)
	}
}

// Close stops every goroutine the component started (the reconciler and
// the subscription watchers). rocketmq-client-go's own goroutines are not
// checked: after a consumer's Shutdown some of them finish a sleep or a pull
// first (its statistics goroutines sleep until the next minute, hour or
// month before they see the shutdown).
func TestCloseLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/primitive.WithRecover"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/consumer.(*pushConsumer).pullMessage"))
	p := New(logger.NewLogger("test")).(*PubSub)
	props := map[string]string{"nameServer": nameServer, "consumerID": unique("rmqtest"), "logLevel": "error"}
	if err := p.Init(context.Background(), cpubsub.Metadata{Base: metadata.Base{Name: "mq", Properties: props}}); err != nil {
		t.Fatalf("Init (run `scripts/backends.sh up rocketmq`): %v", err)
	}
	topic, missing := unique("rmqtest-leak"), unique("rmqtest-missing")
	in := &inbox{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := p.Subscribe(ctx, cpubsub.SubscribeRequest{Topic: topic}, in.handler); err != nil {
		t.Fatal(err)
	}
	if err := p.Subscribe(ctx, cpubsub.SubscribeRequest{Topic: missing}, in.handler); err != nil {
		t.Fatal(err)
	}
	publishUntil(t, p, topic, "leak", in, 20*time.Second)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

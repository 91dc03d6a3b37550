package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	outrig "github.com/outrig/outrig/sdk-go"
)

// psTarget is one pub/sub component under test.
type psTarget struct {
	name    string // subtest name
	file    string // in examples/components
	comp    string // component name in file
	backend string // scripts/backends.sh name ("" when none is needed)
	addr    string
	// ordered names the component (comp, or one of variants) that keeps the
	// order of the events of one partition key (partitionKey metadata) for
	// one subscriber; "" when the backend does not promise it.
	ordered string
	// variants returns more component files (file name → YAML) to serve.
	variants func(t *testing.T) map[string]string
	// partitioned creates a topic with several partitions before use, so
	// that the instances of one app can share it (nil: topics as created
	// on first use are shared already).
	partitioned func(t *testing.T, topic string)
}

func psTargets() []psTarget {
	return []psTarget{
		{name: "kafka", file: "pubsub-kafka.yaml", comp: "kafka-pubsub", backend: "kafka", addr: "127.0.0.1:9092",
			ordered: "kafka-pubsub", partitioned: func(t *testing.T, topic string) { kafkaCreateTopic(t, "127.0.0.1:9092", topic, 4) }},
		{name: "rocketmq", file: "pubsub-rocketmq.yaml", comp: "rocketmq-pubsub", backend: "rocketmq", addr: "127.0.0.1:9876",
			// Order needs the orderly consumer, in a consumer group of its own
			// (the members of a RocketMQ group must subscribe the same topics).
			ordered: "rocketmq-orderly", variants: func(t *testing.T) map[string]string {
				y := psComponentYAML(t, "pubsub-rocketmq.yaml", map[string]string{"consumeOrderly": "true", "consumerGroup": "{appID}-orderly"})
				return map[string]string{"pubsub-rocketmq-orderly.yaml": strings.Replace(y, "name: rocketmq-pubsub", "name: rocketmq-orderly", 1)}
			}},
		{name: "redis", file: "pubsub-redis.yaml", comp: "redis-pubsub", backend: "redis", addr: "127.0.0.1:6379"},
		{name: "outrig-broker", file: "pubsub-outrig-broker.yaml", comp: "broker-pubsub"},
	}
}

// psSuite is one component's environment: a control plane, app A (also the
// publisher), app B, and two instances W1, W2 of app W.
type psSuite struct {
	*psEnv
	target psTarget
	a, b   *outrig.Client
	w      [2]*outrig.Client
}

// TestPubSub runs the pub/sub conformance suite through the sidecar against
// every pub/sub component: go test ./conformance -run 'TestPubSub/kafka'.
func TestPubSub(t *testing.T) {
	for _, tg := range psTargets() {
		t.Run(tg.name, func(t *testing.T) {
			if tg.backend != "" {
				requireBackend(t, tg.backend, tg.addr)
			}
			files := map[string]string{tg.file: psComponentYAML(t, tg.file, nil)}
			if tg.variants != nil {
				for f, y := range tg.variants(t) {
					files[f] = y
				}
			}
			e := startPSEnv(t, tg.comp, files)
			s := &psSuite{psEnv: e, target: tg}
			_, s.a = e.sidecar(t, "conf-a-"+e.run)
			_, s.b = e.sidecar(t, "conf-b-"+e.run)
			_, s.w[0] = e.sidecar(t, "conf-w-"+e.run)
			_, s.w[1] = e.sidecar(t, "conf-w-"+e.run)
			t.Run("deliver-1000", s.testDeliver1000)
			t.Run("retry-redelivers", s.testRetry)
			t.Run("drop-not-redelivered", s.testDrop)
			t.Run("dead-letter", s.testDeadLetter)
			t.Run("instances-share", s.testInstancesShare)
			t.Run("apps-each-get-all", s.testAppsEachGetAll)
			if tg.ordered != "" {
				t.Run("per-key-order", s.testPerKeyOrder)
			} else {
				t.Logf("%s does not promise per-key order (see docs/conformance.md): per-key-order not run", tg.name)
			}
			t.Run("bulk-publish", s.testBulkPublish)
		})
	}
}

// testDeliver1000: 1,000 events published by 8 concurrent publishers are
// all delivered; duplicates are counted and reported.
func (s *psSuite) testDeliver1000(t *testing.T) {
	topic := s.topic("all")
	r := newPSRecorder(nil)
	s.subscribe(t, s.a, topic, r)
	s.awaitReady(t, s.a, topic, r)
	events := psEvents("all", 1000, 16)
	start := time.Now()
	s.publishAll(t, s.a, topic, events, 8)
	published := time.Since(start)
	awaitAll(t, "deliver-1000", 60*time.Second, events, r)
	t.Logf("%s: 1000 published in %v, all delivered after %v, %d duplicates",
		s.target.name, published.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), r.duplicates())
}

// testRetry: an event answered RETRY is delivered again (attempt 2) and,
// answered SUCCESS then, not again.
func (s *psSuite) testRetry(t *testing.T) {
	topic := s.topic("retry")
	r := newPSRecorder(func(e *outrig.TopicEvent) outrig.EventStatus {
		if e.Attempt == 1 {
			return outrig.EventRetry
		}
		return outrig.EventSuccess
	})
	s.subscribe(t, s.a, topic, r)
	s.awaitReady(t, s.a, topic, r)
	events := psEvents("retry", 10, 10)
	s.publishAll(t, s.a, topic, events, 4)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, attempts, _, _ := r.snapshot()
		done := 0
		for _, d := range events {
			if slices.Contains(attempts[d], 2) {
				done++
			}
		}
		if done == len(events) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events answered RETRY were redelivered within 30s: %v", done, len(events), attempts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // a third delivery would come within this
	counts, attempts, _, _ := r.snapshot()
	for _, d := range events {
		if counts[d] != 2 || !slices.Equal(attempts[d], []int{1, 2}) {
			t.Errorf("%s: deliveries with attempts %v, want [1 2] (RETRY then SUCCESS)", d, attempts[d])
		}
	}
}

// testDrop: an event answered DROP is neither delivered again nor
// dead-lettered.
func (s *psSuite) testDrop(t *testing.T) {
	topic, dlTopic := s.topic("drop"), s.topic("drop-dl")
	dl := newPSRecorder(nil)
	s.subscribe(t, s.a, dlTopic, dl)
	s.awaitReady(t, s.a, dlTopic, dl)
	r := newPSRecorder(func(*outrig.TopicEvent) outrig.EventStatus { return outrig.EventDrop })
	s.subscribe(t, s.a, topic, r, outrig.WithDeadLetterTopic(dlTopic), outrig.WithMaxRedeliveries(1))
	s.awaitReady(t, s.a, topic, r)
	events := psEvents("drop", 10, 10)
	s.publishAll(t, s.a, topic, events, 4)
	awaitAll(t, "drop", 30*time.Second, events, r)
	time.Sleep(1500 * time.Millisecond) // redeliveries and dead letters would come within this
	counts, _, _, _ := r.snapshot()
	for _, d := range events {
		if counts[d] != 1 {
			t.Errorf("%s answered DROP was delivered %d times, want 1", d, counts[d])
		}
	}
	if got := dl.got(events); got != 0 {
		t.Errorf("%d dropped events reached the dead-letter topic", got)
	}
}

// testDeadLetter: an event answered RETRY every time is delivered
// 1 + maxRedeliveries times and then reaches the dead-letter topic with its
// id.
func (s *psSuite) testDeadLetter(t *testing.T) {
	topic, dlTopic := s.topic("dl"), s.topic("dl-dead")
	const maxRedeliveries = 2
	dl := newPSRecorder(nil)
	s.subscribe(t, s.a, dlTopic, dl)
	s.awaitReady(t, s.a, dlTopic, dl)
	r := newPSRecorder(func(*outrig.TopicEvent) outrig.EventStatus { return outrig.EventRetry })
	s.subscribe(t, s.a, topic, r, outrig.WithDeadLetterTopic(dlTopic), outrig.WithMaxRedeliveries(maxRedeliveries))
	// Probes are answered SUCCESS by the recorder, so they do not reach dlTopic.
	s.awaitReady(t, s.a, topic, r)
	events := psEvents("dl", 10, 10)
	s.publishAll(t, s.a, topic, events, 4)
	awaitAll(t, "dead-letter topic", 60*time.Second, events, dl)
	_, attempts, ids, _ := r.snapshot()
	_, _, dlIDs, _ := dl.snapshot()
	for _, d := range events {
		if !slices.Equal(attempts[d], []int{1, 2, 3}) {
			t.Errorf("%s: attempts %v before dead-lettering, want [1 2 3] (maxRedeliveries %d)", d, attempts[d], maxRedeliveries)
		}
		if ids[d] == "" || dlIDs[d] != ids[d] {
			t.Errorf("%s: id %q on the dead-letter topic, want the original %q", d, dlIDs[d], ids[d])
		}
	}
}

// testInstancesShare: two sidecars of one app id share a topic's events:
// each gets some, together all.
func (s *psSuite) testInstancesShare(t *testing.T) {
	topic := s.topic("share")
	if s.target.partitioned != nil {
		s.target.partitioned(t, topic)
	}
	r := [2]*psRecorder{newPSRecorder(nil), newPSRecorder(nil)}
	s.subscribe(t, s.w[0], topic, r[0])
	s.subscribe(t, s.w[1], topic, r[1])
	s.awaitReady(t, s.a, topic, r[0], r[1])
	events := psEvents("share", 200, 20)
	s.publishAll(t, s.a, topic, events, 8)
	deadline := time.Now().Add(60 * time.Second)
	for {
		union := 0
		for _, d := range events {
			if r[0].got([]string{d}) > 0 || r[1].got([]string{d}) > 0 {
				union++
			}
		}
		if union == len(events) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instances together got %d of %d events within 60s", union, len(events))
		}
		time.Sleep(20 * time.Millisecond)
	}
	n0, n1 := r[0].got(events), r[1].got(events)
	t.Logf("%s: instance 1 got %d, instance 2 got %d of %d (duplicates %d, %d)", s.target.name, n0, n1, len(events), r[0].duplicates(), r[1].duplicates())
	if n0 == 0 || n1 == 0 {
		t.Errorf("one instance got no event (%d and %d of %d): events are not shared", n0, n1, len(events))
	}
}

// testAppsEachGetAll: two app ids subscribed to one topic each get every event.
func (s *psSuite) testAppsEachGetAll(t *testing.T) {
	topic := s.topic("fanout")
	ra, rb := newPSRecorder(nil), newPSRecorder(nil)
	s.subscribe(t, s.a, topic, ra)
	s.subscribe(t, s.b, topic, rb)
	s.awaitReady(t, s.a, topic, ra, rb)
	events := psEvents("fanout", 200, 20)
	s.publishAll(t, s.a, topic, events, 8)
	awaitAll(t, "apps-each-get-all", 60*time.Second, events, ra, rb)
}

// testPerKeyOrder: where the component promises it, the events of one
// partition key reach a subscriber in publish order. Each key has its own
// sequential publisher; the keys are published concurrently.
func (s *psSuite) testPerKeyOrder(t *testing.T) {
	e := *s.psEnv
	e.name = s.target.ordered
	topic := e.topic("order")
	if s.target.partitioned != nil {
		s.target.partitioned(t, topic)
	}
	r := newPSRecorder(nil)
	e.subscribe(t, s.a, topic, r)
	e.awaitReady(t, s.a, topic, r)
	const keys, perKey = 8, 40
	events := psEvents("order", keys*perKey, keys)
	var wg sync.WaitGroup
	errs := make(chan error, keys)
	for k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < len(events); i += keys {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := s.a.Publish(ctx, e.name, topic, []byte(events[i]), outrig.WithContentType("text/plain"), outrig.WithPartitionKey(psKey(events[i])))
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	awaitAll(t, "per-key-order", 60*time.Second, events, r)
	_, _, _, arrivals := r.snapshot()
	last := map[string]int{}
	bad := 0
	for _, d := range arrivals {
		seq, _ := strconv.Atoi(d[len("order/")+len(psKey(d))+1:])
		if prev, ok := last[psKey(d)]; ok && seq < prev {
			bad++
			if bad <= 5 {
				t.Errorf("key %s: event %d arrived after %d", psKey(d), seq, prev)
			}
		}
		last[psKey(d)] = seq
	}
}

// testBulkPublish: the entries of one BulkPublish are all delivered.
func (s *psSuite) testBulkPublish(t *testing.T) {
	topic := s.topic("bulk")
	r := newPSRecorder(nil)
	s.subscribe(t, s.a, topic, r)
	s.awaitReady(t, s.a, topic, r)
	events := psEvents("bulk", 100, 10)
	entries := make([]outrig.BulkPublishEntry, len(events))
	for i, d := range events {
		entries[i] = outrig.BulkPublishEntry{ID: fmt.Sprint(i), Data: []byte(d), ContentType: "text/plain"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.a.BulkPublish(ctx, s.name, topic, entries); err != nil {
		var be *outrig.BulkPublishError
		if errors.As(err, &be) {
			t.Fatalf("%d of %d entries failed: %v", len(be.Failed), len(entries), err)
		}
		t.Fatal(err)
	}
	awaitAll(t, "bulk-publish", 60*time.Second, events, r)
	if d := r.duplicates(); d > 0 {
		t.Logf("%s: bulk publish delivered %d duplicates", s.target.name, d)
	}
}

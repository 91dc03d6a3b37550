package rocketmq

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	mq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	mqc "github.com/apache/rocketmq-client-go/v2/consumer"
	mqerrors "github.com/apache/rocketmq-client-go/v2/errors"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/dapr/kit/logger"
)

// Route checks of subscribed topics that do not exist yet: first after
// minRouteWait, then less and less often, at most every maxRouteWait.
const (
	minRouteWait = 500 * time.Millisecond
	maxRouteWait = 10 * time.Second
)

// consumers keeps one push consumer holding every subscribed topic that has
// a route. add registers a topic; a reconciler goroutine replaces the
// consumer (a new "generation", with a client instance of its own) whenever
// the set of such topics changes. Safe for concurrent use; close once.
type consumers struct {
	s   *settings
	id  string
	log logger.Logger

	mu     sync.Mutex
	closed bool
	subs   map[string]*subscription
	kick   chan struct{} // buffered(1): something changed
	done   chan struct{}
	wg     sync.WaitGroup

	// Owned by the reconciler goroutine.
	admin    admin.Admin // route lookups; nil when name servers come from a domain
	routable map[string]bool
	// late holds the topics that did not exist when first looked up: every
	// message they hold was published after the subscription was made.
	late    map[string]bool
	current mq.PushConsumer
	keys    []string // subscription keys of current, sorted
	gen     int
}

type subscription struct {
	ctx     context.Context
	sel     mqc.MessageSelector
	handler MessageHandler
}

// key identifies what a consumer generation subscribes for a topic.
func (s *subscription) key(topic string) string {
	return topic + "\x00" + string(s.sel.Type) + "\x00" + s.sel.Expression
}

func newConsumers(s *settings, id string, log logger.Logger) *consumers {
	c := &consumers{s: s, id: id, log: log, subs: map[string]*subscription{}, kick: make(chan struct{}, 1),
		done: make(chan struct{}), routable: map[string]bool{}, late: map[string]bool{}}
	c.wg.Add(1)
	go c.reconcile()
	return c
}

func (c *consumers) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// add subscribes topic until ctx is done. A later add for the same topic
// replaces the earlier one.
func (c *consumers) add(ctx context.Context, topic string, sel mqc.MessageSelector, h MessageHandler) error {
	sub := &subscription{ctx: ctx, sel: sel, handler: h}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errors.New("rocketmq: component closed")
	}
	c.subs[topic] = sub
	c.mu.Unlock()
	c.poke()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		select {
		case <-ctx.Done():
		case <-c.done:
			return
		}
		c.mu.Lock()
		if c.subs[topic] == sub {
			delete(c.subs, topic)
		}
		c.mu.Unlock()
		c.poke()
	}()
	return nil
}

func (c *consumers) close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	close(c.done)
	c.wg.Wait()
	return nil
}

// reconcile runs until close: it keeps the consumer's topics equal to the
// subscribed topics that have a route.
func (c *consumers) reconcile() {
	defer c.wg.Done()
	defer c.stop()
	wait := minRouteWait
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		pending := c.apply()
		if pending {
			timer.Reset(wait)
			wait = min(2*wait, maxRouteWait)
		} else {
			wait = minRouteWait
		}
		select {
		case <-c.done:
			return
		case <-c.kick:
		case <-timer.C:
		}
	}
}

// apply brings the consumer up to date; it reports whether some subscribed
// topic still waits for its route (or the consumer failed to start).
func (c *consumers) apply() (pending bool) {
	c.mu.Lock()
	want := make(map[string]mqc.MessageSelector, len(c.subs))
	keys := make([]string, 0, len(c.subs))
	for t, sub := range c.subs {
		want[t] = sub.sel
		keys = append(keys, sub.key(t))
	}
	c.mu.Unlock()
	slices.Sort(keys)
	ready := map[string]mqc.MessageSelector{}
	readyKeys := keys[:0:0]
	for _, k := range keys {
		t, _, _ := strings.Cut(k, "\x00")
		if c.hasRoute(t) {
			ready[t] = want[t]
			readyKeys = append(readyKeys, k)
		} else {
			pending = true
		}
	}
	if slices.Equal(readyKeys, c.keys) && (c.current != nil || len(ready) == 0) {
		return pending
	}
	c.stop()
	if len(ready) == 0 {
		return pending
	}
	if err := c.start(ready, readyKeys); err != nil {
		c.log.Warnf("rocketmq: consumer of group %s for topics %v did not start (retrying): %v", c.s.ConsumerGroup, slices.Collect(maps.Keys(ready)), err)
		return true
	}
	return pending
}

// hasRoute reports whether topic exists on the name servers (once seen, a
// topic is taken to stay).
func (c *consumers) hasRoute(topic string) bool {
	if c.routable[topic] {
		return true
	}
	if len(c.s.nameServers()) == 0 {
		return true // no lookup without name server addresses: let the consumer find out
	}
	if c.admin == nil {
		opts := []admin.AdminOption{admin.WithResolver(primitive.NewPassthroughResolver(c.s.nameServers()))}
		if cr, ok := c.s.credentials(); ok {
			opts = append(opts, admin.WithCredentials(cr))
		}
		if c.s.NameSpace != "" {
			opts = append(opts, admin.WithNamespace(c.s.NameSpace))
		}
		a, err := admin.NewAdmin(opts...)
		if err != nil {
			c.log.Warnf("rocketmq: route lookups: %v", err)
			return false
		}
		c.admin = a
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	qs, err := c.admin.FetchPublishMessageQueues(ctx, topic)
	if err != nil || len(qs) == 0 {
		if errors.Is(err, mqerrors.ErrTopicNotExist) {
			c.late[topic] = true // not a lookup that failed: the name servers answered
		}
		return false
	}
	c.routable[topic] = true
	return true
}

// start creates and starts a consumer generation for topics.
//
// A queue without a committed offset in the group starts where fromWhere
// says, by default at the queue's last offset. The client adds a topic's
// queues one after another, each after two round trips to the broker (the
// group's offset: none yet; then the queue's last offset), while the queues
// added first already deliver: a message sent to a later queue between its
// two round trips is skipped (a conformance test lost one of 20 events this
// way under load). For a topic that did not exist when it was subscribed,
// every message was published after the subscription, so when all of the
// generation's topics are of that kind it starts from the first offset; a
// committed offset still wins, and an explicit fromWhere is kept.
func (c *consumers) start(topics map[string]mqc.MessageSelector, keys []string) error {
	c.gen++
	fromFirst := true
	for t := range topics {
		fromFirst = fromFirst && c.late[t]
	}
	pc, err := mq.NewPushConsumer(c.s.consumerOptions(fmt.Sprintf("%s-c%d", c.id, c.gen), fromFirst)...)
	if err != nil {
		return err
	}
	for t, sel := range topics {
		if err := pc.Subscribe(t, sel, c.callback(t)); err != nil {
			_ = pc.Shutdown()
			return fmt.Errorf("subscribe %s: %w", t, err)
		}
	}
	if err := pc.Start(); err != nil {
		_ = pc.Shutdown() // Start shuts down on some failures already; twice is harmless
		return err
	}
	c.current, c.keys = pc, keys
	c.log.Infof("rocketmq: consumer of group %s started for %d topics", c.s.ConsumerGroup, len(topics))
	return nil
}

// stop shuts the current consumer down (offsets of handled messages are
// committed; messages in flight are delivered again to the next one).
func (c *consumers) stop() {
	if c.current != nil {
		if err := c.current.Shutdown(); err != nil {
			c.log.Warnf("rocketmq: consumer shutdown: %v", err)
		}
		c.current, c.keys = nil, nil
	}
	if c.admin != nil && c.isClosed() {
		_ = c.admin.Close()
		c.admin = nil
	}
}

func (c *consumers) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// callback hands the messages of topic to the topic's current handler.
func (c *consumers) callback(topic string) func(context.Context, ...*primitive.MessageExt) (mqc.ConsumeResult, error) {
	retry := mqc.ConsumeRetryLater
	if c.s.orderly() {
		retry = mqc.SuspendCurrentQueueAMoment
	}
	return func(_ context.Context, msgs ...*primitive.MessageExt) (mqc.ConsumeResult, error) {
		c.mu.Lock()
		sub := c.subs[topic]
		c.mu.Unlock()
		if sub == nil || sub.ctx.Err() != nil {
			return retry, nil // unsubscribed meanwhile: the group gets it again later
		}
		for _, m := range msgs {
			if err := sub.handler(sub.ctx, m); err != nil {
				c.log.Warnf("rocketmq: message %s of %s not handled (the broker delivers it again later): %v", m.MsgId, topic, err)
				return retry, nil
			}
		}
		return mqc.ConsumeSuccess, nil
	}
}

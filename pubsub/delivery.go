package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	cpubsub "github.com/dapr/components-contrib/pubsub"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"

	"github.com/outrig/outrig/ackstream"
	"github.com/outrig/outrig/errkind"
)

// Consumer receives events for the app: one Subscribe stream. Deliver is
// called concurrently; it returns the app's answer, or ackstream.ErrClosed
// when the stream is gone, or ctx's error.
type Consumer interface {
	Deliver(ctx context.Context, ev *runtimev1.TopicEvent) (runtimev1.EventStatus, error)
}

// DefaultMaxRedeliveries bounds redelivery when nothing else is configured.
const DefaultMaxRedeliveries = 3

// Key names a topic of a pubsub component.
type Key struct{ PubSub, Topic string }

func (k Key) String() string { return k.PubSub + "/" + k.Topic }

// SubOptions are the options a streaming subscriber gives in its initial
// message. A declarative Subscription for the same key takes precedence.
type SubOptions struct {
	DeadLetterTopic string
	MaxRedeliveries int
	Metadata        map[string]string
}

// Outcome of one event, for metrics.
type Outcome string

const (
	OutcomeSuccess    Outcome = "success"
	OutcomeDrop       Outcome = "drop"
	OutcomeRetry      Outcome = "retry"
	OutcomeDeadLetter Outcome = "dead_letter"
	OutcomeDiscarded  Outcome = "discarded" // retries exhausted, no dead-letter topic
)

// Manager runs one app's subscriptions: it keeps one component
// subscription per (pubsub, topic) that has a declarative Subscription or at
// least one attached stream, and delivers each event to one of the app's
// streams for that key (round robin), redelivering on RETRY up to the bound
// and dead-lettering after it.
//
// Lifecycle: NewManager, then Update with each configuration snapshot,
// Attach/detach as streams come and go, Close at shutdown. All methods are
// safe for concurrent use. Update must be called before the components of
// the previous snapshot are closed: it cancels their subscriptions.
type Manager struct {
	appID      string
	log        *slog.Logger
	AckTimeout time.Duration                   // how long an event waits for a consumer and its answer
	Backoff    func(attempt int) time.Duration // delay before redelivery attempt n (n >= 2)
	OnOutcome  func(k Key, o Outcome)          // optional metrics hook

	mu        sync.Mutex
	closed    bool
	pubsubs   map[string]*PubSub
	decl      map[Key]*declared
	consumers map[Key]*consumerSet
	active    map[Key]*activeSub
}

type declared struct {
	sub    *configv1.Subscription
	router *Router
}

type consumerSet struct {
	list    []Consumer
	next    int
	opts    SubOptions
	changed chan struct{} // closed and replaced whenever a consumer attaches
}

type spec struct {
	ps         *PubSub
	decl       *declared
	deadLetter string
	maxRedeliv int
	metadata   map[string]string
}

type activeSub struct {
	spec   spec
	cancel context.CancelFunc
}

// NewManager returns a Manager for appID.
func NewManager(appID string, log *slog.Logger) *Manager {
	return &Manager{
		appID:      appID,
		log:        log,
		AckTimeout: 30 * time.Second,
		Backoff: func(attempt int) time.Duration {
			d := 50 * time.Millisecond << min(attempt-2, 6)
			return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
		},
		pubsubs:   map[string]*PubSub{},
		decl:      map[Key]*declared{},
		consumers: map[Key]*consumerSet{},
		active:    map[Key]*activeSub{},
	}
}

// CheckSubscription validates a declarative Subscription's routing rules.
func CheckSubscription(sub *configv1.Subscription) error {
	_, err := NewRouter(sub)
	return err
}

// Update installs the pubsub components and declarative subscriptions of a
// new snapshot and reconciles the component subscriptions.
func (m *Manager) Update(pubsubs map[string]*PubSub, subs []*configv1.Subscription) error {
	decl := make(map[Key]*declared, len(subs))
	var errs []error
	for _, s := range subs {
		r, err := NewRouter(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("subscription %q: %w", s.GetName(), err))
			continue
		}
		decl[Key{s.GetPubsubName(), s.GetTopic()}] = &declared{sub: s, router: r}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pubsubs, m.decl = pubsubs, decl
	m.reconcileLocked()
	return errors.Join(errs...)
}

// Attach adds a consumer for key. It fails with ErrNotFound when the app
// has no such pubsub component. detach removes it again.
func (m *Manager) Attach(k Key, opts SubOptions, c Consumer) (detach func(), err error) {
	if k.PubSub == "" {
		return nil, errkind.Required("pubsub_name")
	}
	if k.Topic == "" {
		return nil, errkind.Required("topic")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("subscriptions are shutting down: %w", errkind.ErrUnavailable)
	}
	if _, ok := m.pubsubs[k.PubSub]; !ok {
		return nil, fmt.Errorf("pubsub %q: %w", k.PubSub, errkind.ErrNotFound)
	}
	cs := m.consumers[k]
	if cs == nil {
		cs = &consumerSet{changed: make(chan struct{})}
		m.consumers[k] = cs
	}
	if len(cs.list) == 0 {
		cs.opts = opts
	}
	cs.list = append(cs.list, c)
	close(cs.changed)
	cs.changed = make(chan struct{})
	m.reconcileLocked()
	return func() { m.detach(k, c) }, nil
}

func (m *Manager) detach(k Key, c Consumer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cs := m.consumers[k]
	if cs == nil {
		return
	}
	for i, x := range cs.list {
		if x == c {
			cs.list = append(cs.list[:i], cs.list[i+1:]...)
			break
		}
	}
	if len(cs.list) == 0 {
		delete(m.consumers, k)
	}
	m.reconcileLocked()
}

// Subscriptions lists the keys with a running component subscription.
func (m *Manager) Subscriptions() []*runtimev1.SubscriptionInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*runtimev1.SubscriptionInfo, 0, len(m.active))
	for k, a := range m.active {
		info := &runtimev1.SubscriptionInfo{PubsubName: k.PubSub, Topic: k.Topic, Kind: "streaming", DeadLetterTopic: a.spec.deadLetter}
		if a.spec.decl != nil {
			info.Kind = "declarative"
			for _, r := range a.spec.decl.sub.GetRules() {
				info.Routes = append(info.Routes, r.GetPath())
			}
			if d := a.spec.decl.sub.GetDefaultRoute(); d != "" {
				info.Routes = append(info.Routes, d)
			}
		}
		out = append(out, info)
	}
	return out
}

// Close cancels every component subscription.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for k, a := range m.active {
		a.cancel()
		delete(m.active, k)
	}
}

func (m *Manager) desiredLocked(k Key) (spec, bool) {
	ps := m.pubsubs[k.PubSub]
	if ps == nil {
		return spec{}, false
	}
	if d := m.decl[k]; d != nil {
		return spec{ps: ps, decl: d, deadLetter: d.sub.GetDeadLetterTopic(), maxRedeliv: int(d.sub.GetMaxRedeliveries()), metadata: d.sub.GetMetadata()}, true
	}
	if cs := m.consumers[k]; cs != nil && len(cs.list) > 0 {
		return spec{ps: ps, deadLetter: cs.opts.DeadLetterTopic, maxRedeliv: cs.opts.MaxRedeliveries, metadata: cs.opts.Metadata}, true
	}
	return spec{}, false
}

func sameSpec(a, b spec) bool {
	if a.ps != b.ps || a.decl != b.decl || a.deadLetter != b.deadLetter || a.maxRedeliv != b.maxRedeliv || len(a.metadata) != len(b.metadata) {
		return false
	}
	for k, v := range a.metadata {
		if b.metadata[k] != v {
			return false
		}
	}
	return true
}

func (m *Manager) reconcileLocked() {
	if m.closed {
		return
	}
	keys := map[Key]bool{}
	for k := range m.decl {
		keys[k] = true
	}
	for k := range m.consumers {
		keys[k] = true
	}
	for k := range m.active {
		keys[k] = true
	}
	for k := range keys {
		want, ok := m.desiredLocked(k)
		cur := m.active[k]
		if cur != nil && ok && sameSpec(cur.spec, want) {
			continue
		}
		if cur != nil {
			cur.cancel()
			delete(m.active, k)
		}
		if !ok {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		a := &activeSub{spec: want, cancel: cancel}
		err := want.ps.impl.Subscribe(ctx, cpubsub.SubscribeRequest{Topic: k.Topic, Metadata: want.metadata},
			func(hctx context.Context, msg *cpubsub.NewMessage) error { return m.handle(hctx, ctx, k, a.spec, msg) })
		if err != nil {
			cancel()
			m.log.Error("subscribe failed", "app", m.appID, "pubsub", k.PubSub, "topic", k.Topic, "err", err)
			continue
		}
		m.active[k] = a
	}
}

// handle delivers one message; its error makes the component redeliver
// (only when our own bound could not be applied, e.g. at shutdown).
func (m *Manager) handle(hctx, subCtx context.Context, k Key, sp spec, msg *cpubsub.NewMessage) error {
	ev := DecodeEvent(k.PubSub, msg)
	if sp.decl != nil {
		ev.Path = sp.decl.router.Route(ev)
	}
	maxRedeliv := sp.maxRedeliv
	if maxRedeliv <= 0 {
		maxRedeliv = DefaultMaxRedeliveries
	}
	ctx, stop := mergeDone(hctx, subCtx)
	defer stop()
	for attempt := 1; ; attempt++ {
		ev.Attempt = int32(attempt)
		st, err := m.deliverOnce(ctx, k, ev)
		switch {
		case err == nil && st == runtimev1.EventStatus_EVENT_STATUS_SUCCESS:
			m.outcome(k, OutcomeSuccess)
			return nil
		case err == nil && st == runtimev1.EventStatus_EVENT_STATUS_DROP:
			m.outcome(k, OutcomeDrop)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("delivery of %q on %s interrupted: %w", ev.Id, k, ctx.Err())
		}
		m.outcome(k, OutcomeRetry)
		if attempt > maxRedeliv {
			return m.deadLetter(ctx, k, sp, ev, msg)
		}
		select {
		case <-time.After(m.Backoff(attempt + 1)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (m *Manager) outcome(k Key, o Outcome) {
	if m.OnOutcome != nil {
		m.OnOutcome(k, o)
	}
}

func (m *Manager) deadLetter(ctx context.Context, k Key, sp spec, ev *runtimev1.TopicEvent, msg *cpubsub.NewMessage) error {
	if sp.deadLetter == "" {
		m.outcome(k, OutcomeDiscarded)
		m.log.Warn("event discarded after redeliveries", "app", m.appID, "key", k.String(), "id", ev.Id)
		return nil
	}
	ct := ContentTypeCloudEvent
	if msg.ContentType != nil {
		ct = *msg.ContentType
	}
	err := sp.ps.impl.Publish(ctx, &cpubsub.PublishRequest{
		Data: msg.Data, PubsubName: k.PubSub, Topic: sp.deadLetter, ContentType: &ct,
		Metadata: map[string]string{MetaRawPayload: strconv.FormatBool(true)},
	})
	if err != nil {
		return fmt.Errorf("dead-letter %q to %q: %w", ev.Id, sp.deadLetter, err)
	}
	m.outcome(k, OutcomeDeadLetter)
	return nil
}

// deliverOnce waits (up to AckTimeout) for a consumer of k, sends ev and
// waits for its answer.
func (m *Manager) deliverOnce(ctx context.Context, k Key, ev *runtimev1.TopicEvent) (runtimev1.EventStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, m.AckTimeout)
	defer cancel()
	for {
		c, changed := m.pick(k)
		if c != nil {
			st, err := c.Deliver(ctx, ev)
			if errors.Is(err, ackstream.ErrClosed) {
				continue // that stream went away: try another
			}
			return st, err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return 0, fmt.Errorf("no subscriber of %s answered: %w", k, ctx.Err())
		}
	}
}

func (m *Manager) pick(k Key) (Consumer, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cs := m.consumers[k]
	if cs == nil {
		// Wait for a first consumer: park on a set with no consumers yet.
		cs = &consumerSet{changed: make(chan struct{})}
		m.consumers[k] = cs
	}
	if len(cs.list) == 0 {
		return nil, cs.changed
	}
	c := cs.list[cs.next%len(cs.list)]
	cs.next++
	return c, nil
}

// mergeDone returns a context done when either a or b is done, with a's values.
func mergeDone(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() { stop(); cancel() }
}

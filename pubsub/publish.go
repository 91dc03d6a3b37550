// Package pubsub is the pub/sub building block: publishing with CloudEvents
// 1.0 envelopes, and delivery of a topic's events to the app's Subscribe
// streams (and declarative Subscriptions routed into the same path) with
// SUCCESS / RETRY / DROP answers, bounded redelivery and dead-lettering.
package pubsub

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	cpubsub "github.com/dapr/components-contrib/pubsub"
	"github.com/google/uuid"

	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/internal/deadline"
)

// ContentTypeCloudEvent is the content type of a CloudEvents JSON envelope.
const ContentTypeCloudEvent = "application/cloudevents+json"

// Metadata keys understood on publish.
const (
	MetaRawPayload = "rawPayload"
	MetaCEID       = "cloudevent.id"
	MetaCEType     = "cloudevent.type"
	MetaCESource   = "cloudevent.source"
	MetaCESubject  = "cloudevent.subject"
)

// PubSub is one pub/sub component bound to one app. Immutable after New,
// safe for concurrent use; Close once after the last call returned.
type PubSub struct {
	name  string
	typ   string
	appID string
	impl  cpubsub.PubSub
}

// New wraps an initialised contrib pubsub.
func New(name, typ, appID string, impl cpubsub.PubSub) *PubSub {
	return &PubSub{name: name, typ: typ, appID: appID, impl: impl}
}

// Name is the component name.
func (p *PubSub) Name() string { return p.name }

// Type is the component type.
func (p *PubSub) Type() string { return p.typ }

// Close closes the component.
func (p *PubSub) Close() error { return p.impl.Close() }

// Message is one event to publish.
type Message struct {
	Topic       string
	Data        []byte
	ContentType string
	Metadata    map[string]string
}

// Envelope wraps data in a CloudEvents 1.0 JSON envelope unless it already
// is one or the metadata asks for the raw payload. It returns the bytes to
// publish and their content type.
func (p *PubSub) Envelope(m Message) ([]byte, string, error) {
	if raw, _ := strconv.ParseBool(m.Metadata[MetaRawPayload]); raw {
		return m.Data, m.ContentType, nil
	}
	var ce map[string]any
	if m.ContentType == ContentTypeCloudEvent {
		var err error
		ce, err = cpubsub.FromCloudEvent(m.Data, m.Topic, p.name, "", "")
		if err != nil {
			return nil, "", errkind.InvalidArgument("data", "content type %s but not a CloudEvent: %v", ContentTypeCloudEvent, err)
		}
	} else {
		id := m.Metadata[MetaCEID]
		if id == "" {
			id = uuid.NewString()
		}
		source := m.Metadata[MetaCESource]
		if source == "" {
			source = p.appID
		}
		ce = cpubsub.NewCloudEventsEnvelope(id, source, m.Metadata[MetaCEType], m.Metadata[MetaCESubject],
			m.Topic, p.name, m.ContentType, m.Data, "", "")
	}
	b, err := json.Marshal(ce)
	if err != nil {
		return nil, "", fmt.Errorf("encode cloudevent: %w", err)
	}
	return b, ContentTypeCloudEvent, nil
}

func componentMetadata(md map[string]string) map[string]string {
	if len(md) == 0 {
		return md
	}
	out := make(map[string]string, len(md))
	for k, v := range md {
		switch k {
		case MetaCEID, MetaCEType, MetaCESource, MetaCESubject:
			continue
		}
		out[k] = v
	}
	return out
}

// Publish publishes one event.
func (p *PubSub) Publish(ctx context.Context, m Message) error {
	if m.Topic == "" {
		return errkind.Required("topic")
	}
	data, ct, err := p.Envelope(m)
	if err != nil {
		return err
	}
	req := &cpubsub.PublishRequest{Data: data, PubsubName: p.name, Topic: m.Topic, Metadata: componentMetadata(m.Metadata), ContentType: &ct}
	_, err = deadline.Within(ctx, "publish", func(ctx context.Context) (struct{}, error) { return struct{}{}, p.impl.Publish(ctx, req) })
	return p.wrap("publish", m.Topic, err)
}

// BulkEntry is one entry of a bulk publish.
type BulkEntry struct {
	EntryID     string
	Data        []byte
	ContentType string
	Metadata    map[string]string
}

// BulkPublish publishes entries and returns the failed ones by entry id.
// Components without native bulk publish get one publish per entry.
func (p *PubSub) BulkPublish(ctx context.Context, topic string, entries []BulkEntry, md map[string]string) (map[string]error, error) {
	if topic == "" {
		return nil, errkind.Required("topic")
	}
	if len(entries) == 0 {
		return nil, errkind.Required("entries")
	}
	seen := make(map[string]bool, len(entries))
	msgs := make([]cpubsub.BulkMessageEntry, len(entries))
	for i, e := range entries {
		if e.EntryID == "" {
			return nil, errkind.Required(fmt.Sprintf("entries[%d].entry_id", i))
		}
		if seen[e.EntryID] {
			return nil, errkind.InvalidArgument(fmt.Sprintf("entries[%d].entry_id", i), "duplicate entry id %q", e.EntryID)
		}
		seen[e.EntryID] = true
		emd := mergeMD(md, e.Metadata)
		data, ct, err := p.Envelope(Message{Topic: topic, Data: e.Data, ContentType: e.ContentType, Metadata: emd})
		if err != nil {
			return nil, fmt.Errorf("entries[%d]: %w", i, err)
		}
		msgs[i] = cpubsub.BulkMessageEntry{EntryId: e.EntryID, Event: data, ContentType: ct, Metadata: componentMetadata(e.Metadata)}
	}
	failed := map[string]error{}
	if bp, ok := p.impl.(cpubsub.BulkPublisher); ok {
		req := &cpubsub.BulkPublishRequest{Entries: msgs, PubsubName: p.name, Topic: topic, Metadata: componentMetadata(md)}
		resp, err := deadline.Within(ctx, "bulk publish", func(ctx context.Context) (cpubsub.BulkPublishResponse, error) {
			return bp.BulkPublish(ctx, req)
		})
		for _, f := range resp.FailedEntries {
			failed[f.EntryId] = p.wrap("bulk publish", topic, f.Error)
		}
		if err != nil && len(failed) == 0 {
			return nil, p.wrap("bulk publish", topic, err)
		}
		return failed, nil
	}
	for _, m := range msgs {
		ct := m.ContentType
		req := &cpubsub.PublishRequest{Data: m.Event, PubsubName: p.name, Topic: topic, Metadata: mergeMD(componentMetadata(md), m.Metadata), ContentType: &ct}
		_, err := deadline.Within(ctx, "publish", func(ctx context.Context) (struct{}, error) { return struct{}{}, p.impl.Publish(ctx, req) })
		if err != nil {
			failed[m.EntryId] = p.wrap("publish", topic, err)
		}
	}
	return failed, nil
}

func mergeMD(a, b map[string]string) map[string]string {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func (p *PubSub) wrap(op, topic string, err error) error {
	if err == nil {
		return nil
	}
	if errkind.Classified(err) {
		return fmt.Errorf("pubsub %q %s topic %q: %w", p.name, op, topic, err)
	}
	return fmt.Errorf("pubsub %q %s topic %q: %w: %w", p.name, op, topic, errkind.ErrUnavailable, err)
}

package outrig

import (
	"context"
	"strconv"
	"strings"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
)

type publishOptions struct {
	contentType string
	md          metadataBuilder
}

type publishOptionFunc func(*publishOptions)

func (f publishOptionFunc) applyPublish(o *publishOptions) { f(o) }

// WithPartitionKey routes the event by key (Kafka partition, RocketMQ
// sharding key), through the partitionKey metadata key.
func WithPartitionKey(key string) PublishOption {
	return publishOptionFunc(func(o *publishOptions) { o.md.set("partitionKey", key) })
}

// WithRawPayload publishes data as is, without the CloudEvents envelope the
// sidecar adds otherwise (metadata rawPayload=true).
func WithRawPayload() PublishOption {
	return publishOptionFunc(func(o *publishOptions) { o.md.set("rawPayload", "true") })
}

func collectPublishOptions(op string, opts []PublishOption) (publishOptions, error) {
	var o publishOptions
	for _, opt := range opts {
		if opt == nil {
			return o, invalidArg(op, "option", "is nil")
		}
		opt.applyPublish(&o)
	}
	return o, nil
}

// Publish sends data as one event to topic of the pubsub component. The
// sidecar wraps it in a CloudEvents 1.0 envelope unless it already is one
// (WithContentType("application/cloudevents+json")) or WithRawPayload is
// given. Options: WithContentType (default application/json),
// WithMetadata, WithPartitionKey, WithRawPayload.
func (c *Client) Publish(ctx context.Context, pubsub, topic string, data []byte, opts ...PublishOption) error {
	const op = "Publish"
	if err := requirePubsubTopic(op, pubsub, topic); err != nil {
		return err
	}
	o, err := collectPublishOptions(op, opts)
	if err != nil {
		return err
	}
	req := &runtimev1.PublishRequest{
		PubsubName:      pubsub,
		Topic:           topic,
		Data:            data,
		DataContentType: o.contentType,
		Metadata:        o.md.m,
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	return c.t.publish(ctx, req)
}

// BulkPublishEntry is one event of BulkPublish.
type BulkPublishEntry struct {
	// ID identifies the entry in a BulkPublishError; unique within the call.
	// Empty means its index in the call ("0", "1", ...).
	ID          string
	Data        []byte
	ContentType string
	Metadata    map[string]string
}

// BulkPublishFailure names an entry that was not published and why.
type BulkPublishFailure struct {
	ID    string
	Error string
}

// BulkPublishError is returned by BulkPublish when some entries were not
// published; the others were. Find it with errors.As.
type BulkPublishError struct {
	Failed []BulkPublishFailure
}

func (e *BulkPublishError) Error() string {
	var b strings.Builder
	b.WriteString("outrig BulkPublish: ")
	b.WriteString(strconv.Itoa(len(e.Failed)))
	b.WriteString(" entries not published")
	for i, f := range e.Failed {
		if i == 3 {
			b.WriteString(", ...")
			break
		}
		b.WriteString("; ")
		b.WriteString(f.ID)
		b.WriteString(": ")
		b.WriteString(f.Error)
	}
	return b.String()
}

// BulkPublish sends several events to topic in one call. If the call itself
// fails nothing is known to be published and the error is an *Error; if some
// entries fail the error is a *BulkPublishError listing them. Options apply
// to the whole request: WithMetadata, WithPartitionKey, WithRawPayload
// (WithContentType is per entry: set BulkPublishEntry.ContentType).
func (c *Client) BulkPublish(ctx context.Context, pubsub, topic string, entries []BulkPublishEntry, opts ...PublishOption) error {
	const op = "BulkPublish"
	if err := requirePubsubTopic(op, pubsub, topic); err != nil {
		return err
	}
	if len(entries) == 0 {
		return invalidArg(op, "entries", "must not be empty")
	}
	o, err := collectPublishOptions(op, opts)
	if err != nil {
		return err
	}
	if o.contentType != "" {
		return invalidArg(op, "WithContentType", "does not apply: set BulkPublishEntry.ContentType")
	}
	wire := make([]*runtimev1.BulkPublishEntry, len(entries))
	seen := make(map[string]int, len(entries))
	for i, e := range entries {
		id := e.ID
		if id == "" {
			id = strconv.Itoa(i)
		}
		if j, dup := seen[id]; dup {
			return invalidArg(op, "entries["+strconv.Itoa(i)+"].ID", strconv.Quote(id)+" duplicates entries["+strconv.Itoa(j)+"]")
		}
		seen[id] = i
		wire[i] = &runtimev1.BulkPublishEntry{EntryId: id, Event: e.Data, ContentType: e.ContentType, Metadata: e.Metadata}
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	resp, err := c.t.bulkPublish(ctx, &runtimev1.BulkPublishRequest{
		PubsubName: pubsub, Topic: topic, Entries: wire, Metadata: o.md.m,
	})
	if err != nil {
		return err
	}
	if failed := resp.GetFailedEntries(); len(failed) > 0 {
		out := &BulkPublishError{Failed: make([]BulkPublishFailure, len(failed))}
		for i, f := range failed {
			out.Failed[i] = BulkPublishFailure{ID: f.GetEntryId(), Error: f.GetError()}
		}
		return out
	}
	return nil
}

func requirePubsubTopic(op, pubsub, topic string) error {
	if pubsub == "" {
		return invalidArg(op, "pubsub", "is required")
	}
	if topic == "" {
		return invalidArg(op, "topic", "is required")
	}
	return nil
}

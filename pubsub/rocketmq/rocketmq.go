// Package rocketmq is Outrig's pubsub.rocketmq component: Apache RocketMQ
// through rocketmq-client-go/v2 (the remoting protocol), behind
// components-contrib's pubsub.PubSub interface and with the metadata keys of
// contrib's pubsub.rocketmq, so that Dapr component YAML works unchanged.
//
// Why not contrib's component (v1.16.0): through a sidecar whose apps
// subscribe and unsubscribe at run time it loses events.
//
//   - Its consumer starts once, a second after the first Subscribe. If a
//     subscribed topic does not exist yet at that moment (the usual case:
//     the subscriber is up before the first publish), the start fails, is
//     logged once, and the subscription never receives anything.
//   - A topic subscribed after that start is only fetched after the
//     client's next route refresh and rebalance (20–30 s).
//   - Cancelling a subscription does not stop its deliveries.
//   - Each message reaches the handler wrapped in a second CloudEvent.
//
// This component keeps one push consumer per component instance holding
// every subscribed topic (the members of a RocketMQ consumer group must all
// subscribe the same topics), and replaces it by a new one whenever that set
// changes; a subscribed topic that has no route yet is looked up again
// (after half a second, backing off to every 10 s) and joins the consumer
// once a publisher created it. Messages reach the handler as they were
// published. Client holds this machinery; Outrig's bindings.rocketmq uses
// it too. The consumer group is consumerGroup, else
// consumerID (the sidecar's app id).
//
// Delivery is at least once: a message whose handler failed, or that was in
// flight when the consumer was replaced, is delivered again. Order is kept
// per queue only with consumeOrderly "true" and a sharding key
// (rocketmq-shardingkey or partitionKey metadata on publish).
package rocketmq

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	mqp "github.com/apache/rocketmq-client-go/v2/producer"
	cpubsub "github.com/dapr/components-contrib/pubsub"
	"github.com/dapr/kit/logger"
)

// Metadata keys understood on publish. Other keys become message properties.
const (
	MetaTag         = "rocketmq-tag"
	MetaKeys        = "rocketmq-key" // comma separated
	MetaShardingKey = "rocketmq-shardingkey"
	MetaQueue       = "rocketmq-queue" // queue id, with the default selector
	MetaPartition   = "partitionKey"   // the building blocks' key: the sharding key unless rocketmq-shardingkey is set
	propContentType = "content-type"
)

// Subscribe metadata choosing the messages of a topic (as in contrib):
// rocketmq-sub-type "tag" (default) or "sql92", and the expression.
const (
	MetaSubType       = "rocketmq-sub-type"
	MetaSubExpression = "rocketmq-sub-expression"
)

// PubSub is the component. Init once, then Publish and Subscribe from any
// goroutine, Close once.
type PubSub struct {
	log logger.Logger
	c   *Client
}

// New returns an uninitialised component (the factory registered as
// pubsub.rocketmq).
func New(log logger.Logger) cpubsub.PubSub { return &PubSub{log: log} }

// Init parses the metadata and starts the producer.
func (p *PubSub) Init(_ context.Context, md cpubsub.Metadata) error {
	c, err := NewClient(md.Properties, p.log)
	if err != nil {
		return err
	}
	p.c = c
	return nil
}

// Features reports no optional features.
func (p *PubSub) Features() []cpubsub.Feature { return nil }

// Publish sends one message and waits for the broker's answer.
func (p *PubSub) Publish(ctx context.Context, req *cpubsub.PublishRequest) error {
	if p.c == nil {
		return errors.New("rocketmq: component not initialised")
	}
	return p.c.Send(ctx, NewMessage(req.Topic, req.Data, req.ContentType, req.Metadata))
}

// Subscribe delivers the messages of req.Topic (those the rocketmq-sub-type
// and rocketmq-sub-expression metadata select; all by default) to handler
// until ctx is done. It returns at once; the topic joins the consumer in the
// background, as soon as it has a route.
func (p *PubSub) Subscribe(ctx context.Context, req cpubsub.SubscribeRequest, handler cpubsub.Handler) error {
	if p.c == nil {
		return errors.New("rocketmq: component not initialised")
	}
	sel, err := Selector(req.Metadata[MetaSubType], req.Metadata[MetaSubExpression])
	if err != nil {
		return err
	}
	group := p.c.ConsumerGroup()
	return p.c.Subscribe(ctx, req.Topic, sel, func(ctx context.Context, m *primitive.MessageExt) error {
		return handler(ctx, toNewMessage(req.Topic, group, m))
	})
}

// Close stops the consumer and the producer.
func (p *PubSub) Close() error {
	if p.c == nil {
		return nil
	}
	return p.c.Close()
}

// NewMessage builds a message: tag, keys, sharding key and queue from the
// metadata, the other keys (and the content type) as properties.
func NewMessage(topic string, data []byte, contentType *string, md map[string]string) *primitive.Message {
	msg := primitive.NewMessage(topic, data)
	for k, v := range md {
		switch k {
		case MetaTag:
			msg.WithTag(v)
		case MetaKeys:
			msg.WithKeys(strings.Split(v, ","))
		case MetaShardingKey:
		default:
			msg.WithProperty(k, v)
		}
	}
	if key := firstOf(md[MetaShardingKey], md[MetaPartition]); key != "" {
		msg.WithShardingKey(key)
	}
	if contentType != nil && *contentType != "" {
		msg.WithProperty(propContentType, *contentType)
	}
	return msg
}

// keySelector is the default queue selector: the queue named by the
// rocketmq-queue property, else by the hash of the sharding key (so that the
// messages of one key stay in one queue), else round robin.
type keySelector struct {
	hash, roundRobin mqp.QueueSelector
}

func newKeySelector() *keySelector {
	return &keySelector{hash: mqp.NewHashQueueSelector(), roundRobin: mqp.NewRoundRobinQueueSelector()}
}

func (k *keySelector) Select(m *primitive.Message, qs []*primitive.MessageQueue) *primitive.MessageQueue {
	if id := m.GetProperty(MetaQueue); id != "" {
		for _, q := range qs {
			if strconv.Itoa(q.QueueId) == id {
				return q
			}
		}
	}
	if m.GetShardingKey() != "" {
		return k.hash.Select(m, qs)
	}
	return k.roundRobin.Select(m, qs)
}

// toNewMessage turns a received message into the component's message.
func toNewMessage(topic, group string, m *primitive.MessageExt) *cpubsub.NewMessage {
	md := map[string]string{
		"rocketmq-msg-id":        m.MsgId,
		"rocketmq-consumerGroup": group,
		"rocketmq-reconsume":     strconv.Itoa(int(m.ReconsumeTimes)),
	}
	if t := m.GetTags(); t != "" {
		md[MetaTag] = t
	}
	if k := m.GetKeys(); k != "" {
		md[MetaKeys] = k
	}
	if k := m.GetShardingKey(); k != "" {
		md[MetaShardingKey] = k
	}
	if m.Queue != nil {
		md["rocketmq-broker-name"] = m.Queue.BrokerName
		md["rocketmq-queue-id"] = strconv.Itoa(m.Queue.QueueId)
	}
	out := &cpubsub.NewMessage{Topic: topic, Data: m.Body, Metadata: md}
	if ct := m.GetProperty(propContentType); ct != "" {
		out.ContentType = &ct
	}
	return out
}

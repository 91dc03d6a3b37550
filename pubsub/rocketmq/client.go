package rocketmq

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"

	mq "github.com/apache/rocketmq-client-go/v2"
	mqc "github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/dapr/kit/logger"
)

// Client is the RocketMQ side of one component instance: a producer, and
// the consumer of the instance's subscriptions (see consumers). The
// pubsub.rocketmq component and Outrig's bindings.rocketmq are built on it.
// Safe for concurrent use after NewClient; Close once.
type Client struct {
	s        *settings
	producer mq.Producer
	cons     *consumers
}

// MessageHandler handles one received message; an error has it delivered
// again later.
type MessageHandler func(ctx context.Context, m *primitive.MessageExt) error

// NewClient parses props (pubsub.rocketmq's metadata keys) and starts the
// producer. Its client instances are named after instanceName (default
// "outrig"), the process and a random suffix, so that several component
// instances in one process never share a client.
func NewClient(props map[string]string, log logger.Logger) (*Client, error) {
	s, err := parseSettings(props)
	if err != nil {
		return nil, err
	}
	rlog.SetLogLevel(s.LogLevel)
	id := fmt.Sprintf("%s-%d-%06x", firstOf(s.InstanceName, "outrig"), os.Getpid(), rand.Uint32()&0xffffff)
	prod, err := mq.NewProducer(s.producerOptions(id + "-p")...)
	if err != nil {
		return nil, fmt.Errorf("rocketmq producer: %w", err)
	}
	if err := prod.Start(); err != nil {
		return nil, fmt.Errorf("rocketmq producer start: %w", err)
	}
	return &Client{s: s, producer: prod, cons: newConsumers(s, id, log)}, nil
}

// ConsumerGroup is the group of the client's subscriptions.
func (c *Client) ConsumerGroup() string { return c.s.ConsumerGroup }

// Send sends msg and waits for the broker's answer.
func (c *Client) Send(ctx context.Context, msg *primitive.Message) error {
	res, err := c.producer.SendSync(ctx, msg)
	if err != nil {
		return fmt.Errorf("rocketmq send to %s: %w", msg.Topic, err)
	}
	if res.Status != primitive.SendOK {
		return fmt.Errorf("rocketmq send to %s: broker answered status %d", msg.Topic, res.Status)
	}
	return nil
}

// Subscribe hands the messages of topic that sel selects to h until ctx is
// done. It returns at once; the topic joins the consumer in the background,
// as soon as it has a route. A later Subscribe of the same topic replaces
// the earlier one.
func (c *Client) Subscribe(ctx context.Context, topic string, sel mqc.MessageSelector, h MessageHandler) error {
	if topic == "" {
		return errors.New("rocketmq subscribe: topic is required")
	}
	return c.cons.add(ctx, topic, sel, h)
}

// Close stops the consumer, then the producer.
func (c *Client) Close() error {
	return errors.Join(c.cons.close(), c.producer.Shutdown())
}

// Selector returns the message selector of a subscription: typ "tag"
// (default; expr such as "blue || green", "" or "*" for all) or "sql92".
func Selector(typ, expr string) (mqc.MessageSelector, error) {
	switch strings.ToUpper(typ) {
	case "", string(mqc.TAG):
		if expr == "*" {
			expr = ""
		}
		return mqc.MessageSelector{Type: mqc.TAG, Expression: expr}, nil
	case string(mqc.SQL92):
		if expr == "" {
			return mqc.MessageSelector{}, errors.New("rocketmq subscribe: an sql92 selector needs an expression")
		}
		return mqc.MessageSelector{Type: mqc.SQL92, Expression: expr}, nil
	}
	return mqc.MessageSelector{}, fmt.Errorf("rocketmq subscribe: selector type %q: want tag or sql92", typ)
}

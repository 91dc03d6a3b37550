// Package rocketmq is Outrig's bindings.rocketmq: an output binding that
// sends messages to RocketMQ and an input binding that receives them, with
// the metadata keys of components-contrib's bindings.rocketmq (accessProto
// tcp only: the remoting protocol).
//
// Why not contrib's binding (v1.16.0): its input consumer starts when the
// component is created, and a topic that does not exist yet at that moment
// makes the start fail for good; the failed consumer also shuts down the
// client it shares with the producer, so the output fails too ("service
// close is not running"). Its consumer and producer are package-level
// singletons of github.com/cinience/go_rocketmq, shared by every instance in
// the process. This binding is built on pubsub/rocketmq's Client: an input
// topic that does not exist yet starts receiving once it is created, and
// every instance has clients of its own.
package rocketmq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	cbindings "github.com/dapr/components-contrib/bindings"
	"github.com/dapr/kit/logger"
	kitmd "github.com/dapr/kit/metadata"

	prmq "github.com/outrig/outrig/pubsub/rocketmq"
)

// Request metadata of create.
const (
	MetaTopic = "rocketmq-topic" // target topic; default: every configured topic
	MetaTag   = "rocketmq-tag"   // default: the topic's expression in topics
	MetaKey   = "rocketmq-key"
)

// settings are the binding's metadata (contrib's keys).
type settings struct {
	AccessProto       string `mapstructure:"accessProto"`
	AccessKey         string `mapstructure:"accessKey"`
	SecretKey         string `mapstructure:"secretKey"`
	NameServer        string `mapstructure:"nameServer"`
	NameServerDomain  string `mapstructure:"nameServerDomain"`
	ConsumerGroup     string `mapstructure:"consumerGroup"`
	ConsumerBatchSize int    `mapstructure:"consumerBatchSize"`
	InstanceID        string `mapstructure:"instanceId"` // the namespace
	Retries           int    `mapstructure:"retries"`
	Topics            string `mapstructure:"topics"` // "topic" or "topic||expression", comma separated
}

// topic is one entry of topics.
type topic struct{ name, expr string }

func parseTopics(s string) ([]topic, error) {
	var out []topic
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, expr, _ := strings.Cut(entry, "||")
		if name == "" {
			return nil, fmt.Errorf("rocketmq binding metadata: topics entry %q has no topic", entry)
		}
		out = append(out, topic{name: name, expr: expr})
	}
	return out, nil
}

// Binding is the input and output binding. Init once; Invoke from any
// goroutine; Read once; Close once.
type Binding struct {
	log    logger.Logger
	client *prmq.Client
	topics []topic
}

// New returns an uninitialised binding (the factory registered as
// bindings.rocketmq, for input and output).
func New(log logger.Logger) *Binding { return &Binding{log: log} }

// Init parses the metadata and starts the producer.
func (b *Binding) Init(_ context.Context, md cbindings.Metadata) error {
	var s settings
	if err := kitmd.DecodeMetadata(md.Properties, &s); err != nil {
		return fmt.Errorf("rocketmq binding metadata: %w", err)
	}
	if p := strings.ToLower(s.AccessProto); p != "" && p != "tcp" {
		return fmt.Errorf("rocketmq binding metadata: accessProto %q is not supported (tcp only)", s.AccessProto)
	}
	topics, err := parseTopics(s.Topics)
	if err != nil {
		return err
	}
	group := s.ConsumerGroup
	if group == "" {
		if len(topics) > 0 {
			return errors.New("rocketmq binding metadata: consumerGroup is required to read topics")
		}
		group = "outrig-binding" // output only: the group is not used
	}
	props := map[string]string{
		"nameServer": s.NameServer, "nameServerDomain": s.NameServerDomain, "nameSpace": s.InstanceID,
		"consumerGroup": group, "producerGroup": group, "accessKey": s.AccessKey, "secretKey": s.SecretKey,
	}
	if s.Retries > 0 {
		props["retries"] = strconv.Itoa(s.Retries)
	}
	if s.ConsumerBatchSize > 0 {
		props["pullBatchSize"] = strconv.Itoa(s.ConsumerBatchSize)
	}
	c, err := prmq.NewClient(props, b.log)
	if err != nil {
		return err
	}
	b.client, b.topics = c, topics
	return nil
}

// Operations lists the output operations.
func (b *Binding) Operations() []cbindings.OperationKind {
	return []cbindings.OperationKind{cbindings.CreateOperation}
}

// Invoke runs create: it sends req.Data to the topic of the rocketmq-topic
// metadata, or to every configured topic.
func (b *Binding) Invoke(ctx context.Context, req *cbindings.InvokeRequest) (*cbindings.InvokeResponse, error) {
	if req.Operation != cbindings.CreateOperation {
		return nil, fmt.Errorf("rocketmq binding: operation %q not supported (create only)", req.Operation)
	}
	targets := b.topics
	if t := req.Metadata[MetaTopic]; t != "" {
		targets = []topic{{name: t}}
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("rocketmq binding: no topic: set the %s metadata or topics", MetaTopic)
	}
	for _, t := range targets {
		msg := primitive.NewMessage(t.name, req.Data)
		if tag := req.Metadata[MetaTag]; tag != "" {
			msg.WithTag(tag)
		} else if t.expr != "" {
			msg.WithTag(t.expr)
		}
		if k := req.Metadata[MetaKey]; k != "" {
			msg.WithKeys([]string{k})
		}
		if err := b.client.Send(ctx, msg); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// Read delivers the messages of the configured topics to handler until ctx
// is done; a handler error has the message delivered again later.
func (b *Binding) Read(ctx context.Context, handler cbindings.Handler) error {
	if len(b.topics) == 0 {
		return errors.New("rocketmq binding: no topics to read (metadata topics)")
	}
	group := b.client.ConsumerGroup()
	for _, t := range b.topics {
		sel, err := prmq.Selector("tag", t.expr)
		if err != nil {
			return err
		}
		name := t.name
		err = b.client.Subscribe(ctx, name, sel, func(ctx context.Context, m *primitive.MessageExt) error {
			md := map[string]string{"rocketmq-topic": name, "rocketmq-consumerGroup": group, "rocketmq-msg-id": m.MsgId}
			if tag := m.GetTags(); tag != "" {
				md[MetaTag] = tag
			}
			if k := strings.TrimSpace(m.GetKeys()); k != "" {
				md[MetaKey] = k
			}
			_, err := handler(ctx, &cbindings.ReadResponse{Data: m.Body, Metadata: md})
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Close stops reading and the producer.
func (b *Binding) Close() error {
	if b.client == nil {
		return nil
	}
	return b.client.Close()
}

package rocketmq

import (
	"fmt"
	"strings"
	"time"

	mqc "github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	mqp "github.com/apache/rocketmq-client-go/v2/producer"
	kitmd "github.com/dapr/kit/metadata"
	kitstrings "github.com/dapr/kit/strings"
)

// settings are the component's metadata, under the keys of
// components-contrib's pubsub.rocketmq so that its YAML works unchanged.
// Keys of contrib that only tune its own client and have no equivalent in
// rocketmq-client-go/v2 (pullThresholdForTopic and the like) are accepted
// and passed on where the client has the option.
type settings struct {
	NameServer       string `mapstructure:"nameServer"`
	NameServerDomain string `mapstructure:"nameServerDomain"`
	NameSpace        string `mapstructure:"nameSpace"`
	InstanceName     string `mapstructure:"instanceName"`
	ConsumerGroup    string `mapstructure:"consumerGroup"`
	ProducerGroup    string `mapstructure:"producerGroup"`
	GroupName        string `mapstructure:"groupName"` // deprecated spelling of both groups
	ConsumerID       string `mapstructure:"consumerID"`
	AccessKey        string `mapstructure:"accessKey"`
	SecretKey        string `mapstructure:"secretKey"`
	SecurityToken    string `mapstructure:"securityToken"`
	Retries          int    `mapstructure:"retries"`

	ProducerQueueSelector string `mapstructure:"producerQueueSelector"`
	QueueSelector         string `mapstructure:"queueSelector"`
	SendTimeOutSec        int    `mapstructure:"sendTimeOutSec"`
	SendTimeOut           int64  `mapstructure:"sendTimeOut"` // deprecated: nanoseconds

	ConsumerModel              string `mapstructure:"consumerModel"`
	FromWhere                  string `mapstructure:"fromWhere"`
	ConsumeFromWhere           string `mapstructure:"consumeFromWhere"`
	ConsumeTimestamp           string `mapstructure:"consumeTimestamp"`
	ConsumeOrderly             string `mapstructure:"consumeOrderly"`
	ConsumeMessageBatchMaxSize int    `mapstructure:"consumeMessageBatchMaxSize"`
	ConsumeConcurrentlyMaxSpan int    `mapstructure:"consumeConcurrentlyMaxSpan"`
	MaxReconsumeTimes          int32  `mapstructure:"maxReconsumeTimes"`
	AutoCommit                 string `mapstructure:"autoCommit"`
	ConsumeTimeout             int    `mapstructure:"consumeTimeout"`      // minutes
	ConsumerPullTimeout        int    `mapstructure:"consumerPullTimeout"` // seconds
	PullInterval               int    `mapstructure:"pullInterval"`        // milliseconds
	PullBatchSize              int32  `mapstructure:"pullBatchSize"`
	ConsumerBatchSize          int32  `mapstructure:"consumerBatchSize"` // deprecated spelling of pullBatchSize
	PullThresholdForQueue      int64  `mapstructure:"pullThresholdForQueue"`
	PullThresholdForTopic      int    `mapstructure:"pullThresholdForTopic"`
	PullThresholdSizeForQueue  int    `mapstructure:"pullThresholdSizeForQueue"`
	PullThresholdSizeForTopic  int    `mapstructure:"pullThresholdSizeForTopic"`

	LogLevel string `mapstructure:"logLevel"`
}

// defaultSendTimeout bounds one send when the metadata sets none (the
// caller's deadline bounds it too).
const defaultSendTimeout = 3 * time.Second

// parseSettings decodes and checks the metadata.
func parseSettings(props map[string]string) (*settings, error) {
	s := &settings{Retries: 2, LogLevel: "warn"}
	if err := kitmd.DecodeMetadata(props, s); err != nil {
		return nil, fmt.Errorf("rocketmq metadata: %w", err)
	}
	if s.NameServer == "" && s.NameServerDomain == "" {
		return nil, fmt.Errorf("rocketmq metadata: nameServer (or nameServerDomain) is required")
	}
	if s.ConsumerGroup == "" {
		s.ConsumerGroup = firstOf(s.GroupName, s.ConsumerID)
	}
	if s.ProducerGroup == "" {
		s.ProducerGroup = firstOf(s.GroupName, s.ConsumerID)
	}
	if s.ConsumerGroup == "" {
		return nil, fmt.Errorf("rocketmq metadata: consumerGroup is required (or consumerID, which the sidecar sets to the app id)")
	}
	if s.ProducerQueueSelector == "" {
		s.ProducerQueueSelector = s.QueueSelector
	}
	if _, err := s.selector(); err != nil {
		return nil, err
	}
	if _, err := s.consumeFrom(); err != nil {
		return nil, err
	}
	switch strings.ToLower(s.ConsumerModel) {
	case "", "clustering", "broadcasting":
	default:
		return nil, fmt.Errorf("rocketmq metadata: consumerModel %q: want clustering or broadcasting", s.ConsumerModel)
	}
	if s.ConsumerBatchSize > 0 && s.PullBatchSize == 0 {
		s.PullBatchSize = s.ConsumerBatchSize
	}
	return s, nil
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func (s *settings) orderly() bool { return kitstrings.IsTruthy(s.ConsumeOrderly) }

func (s *settings) nameServers() primitive.NamesrvAddr {
	var out primitive.NamesrvAddr
	for _, a := range strings.FieldsFunc(s.NameServer, func(r rune) bool { return r == ',' || r == ';' }) {
		out = append(out, strings.TrimSpace(a))
	}
	return out
}

func (s *settings) credentials() (primitive.Credentials, bool) {
	c := primitive.Credentials{AccessKey: s.AccessKey, SecretKey: s.SecretKey, SecurityToken: s.SecurityToken}
	return c, s.AccessKey != "" && s.SecretKey != ""
}

func (s *settings) sendTimeout() time.Duration {
	switch {
	case s.SendTimeOutSec > 0:
		return time.Duration(s.SendTimeOutSec) * time.Second
	case s.SendTimeOut > 0:
		return time.Duration(s.SendTimeOut)
	}
	return defaultSendTimeout
}

// selector picks the queue of a message: by default (and with "dapr") the
// queue the metadata names, else by the hash of the sharding key, else round
// robin.
func (s *settings) selector() (mqp.QueueSelector, error) {
	switch strings.ToLower(s.ProducerQueueSelector) {
	case "", "dapr":
		return newKeySelector(), nil
	case "hash":
		return mqp.NewHashQueueSelector(), nil
	case "random":
		return mqp.NewRandomQueueSelector(), nil
	case "roundrobin":
		return mqp.NewRoundRobinQueueSelector(), nil
	case "manual":
		return mqp.NewManualQueueSelector(), nil
	}
	return nil, fmt.Errorf("rocketmq metadata: producerQueueSelector %q: want hash, random, roundRobin, manual or dapr", s.ProducerQueueSelector)
}

func (s *settings) consumeFrom() (mqc.ConsumeFromWhere, error) {
	switch strings.ToLower(firstOf(s.FromWhere, s.ConsumeFromWhere)) {
	case "", "consumefromlastoffset":
		return mqc.ConsumeFromLastOffset, nil
	case "consumefromfirstoffset":
		return mqc.ConsumeFromFirstOffset, nil
	case "consumefromtimestamp":
		return mqc.ConsumeFromTimestamp, nil
	}
	return 0, fmt.Errorf("rocketmq metadata: fromWhere %q: want ConsumeFromLastOffset, ConsumeFromFirstOffset or ConsumeFromTimestamp", firstOf(s.FromWhere, s.ConsumeFromWhere))
}

// consumerOptions are the push consumer's options for one generation;
// lateTopics (see consumers.start) makes a fromWhere left unset start
// queues without a committed offset at the first offset.
func (s *settings) consumerOptions(instance string, lateTopics bool) []mqc.Option {
	opts := []mqc.Option{mqc.WithGroupName(s.ConsumerGroup), mqc.WithInstance(instance)}
	if ns := s.nameServers(); len(ns) > 0 {
		opts = append(opts, mqc.WithNameServer(ns))
	}
	if s.NameServerDomain != "" {
		opts = append(opts, mqc.WithNameServerDomain(s.NameServerDomain))
	}
	if s.NameSpace != "" {
		opts = append(opts, mqc.WithNamespace(s.NameSpace))
	}
	if c, ok := s.credentials(); ok {
		opts = append(opts, mqc.WithCredentials(c))
	}
	if s.Retries > 0 {
		opts = append(opts, mqc.WithRetry(s.Retries))
	}
	if strings.EqualFold(s.ConsumerModel, "broadcasting") {
		opts = append(opts, mqc.WithConsumerModel(mqc.BroadCasting))
	}
	from, _ := s.consumeFrom()
	if lateTopics && firstOf(s.FromWhere, s.ConsumeFromWhere) == "" {
		from = mqc.ConsumeFromFirstOffset
	}
	opts = append(opts, mqc.WithConsumeFromWhere(from))
	if s.ConsumeTimestamp != "" {
		opts = append(opts, mqc.WithConsumeTimestamp(s.ConsumeTimestamp))
	}
	if s.orderly() {
		opts = append(opts, mqc.WithConsumerOrder(true))
	}
	if s.ConsumeMessageBatchMaxSize > 0 {
		opts = append(opts, mqc.WithConsumeMessageBatchMaxSize(s.ConsumeMessageBatchMaxSize))
	}
	if s.ConsumeConcurrentlyMaxSpan > 0 {
		opts = append(opts, mqc.WithConsumeConcurrentlyMaxSpan(s.ConsumeConcurrentlyMaxSpan))
	}
	if s.MaxReconsumeTimes > 0 {
		opts = append(opts, mqc.WithMaxReconsumeTimes(s.MaxReconsumeTimes))
	}
	if s.AutoCommit != "" {
		opts = append(opts, mqc.WithAutoCommit(kitstrings.IsTruthy(s.AutoCommit)))
	}
	if s.ConsumeTimeout > 0 {
		opts = append(opts, mqc.WithConsumeTimeout(time.Duration(s.ConsumeTimeout)*time.Minute))
	}
	if s.ConsumerPullTimeout > 0 {
		opts = append(opts, mqc.WithConsumerPullTimeout(time.Duration(s.ConsumerPullTimeout)*time.Second))
	}
	if s.PullInterval > 0 {
		opts = append(opts, mqc.WithPullInterval(time.Duration(s.PullInterval)*time.Millisecond))
	}
	if s.PullBatchSize > 0 {
		opts = append(opts, mqc.WithPullBatchSize(s.PullBatchSize))
	}
	if s.PullThresholdForQueue > 0 {
		opts = append(opts, mqc.WithPullThresholdForQueue(s.PullThresholdForQueue))
	}
	if s.PullThresholdForTopic > 0 {
		opts = append(opts, mqc.WithPullThresholdForTopic(s.PullThresholdForTopic))
	}
	if s.PullThresholdSizeForQueue > 0 {
		opts = append(opts, mqc.WithPullThresholdSizeForQueue(s.PullThresholdSizeForQueue))
	}
	if s.PullThresholdSizeForTopic > 0 {
		opts = append(opts, mqc.WithPullThresholdSizeForTopic(s.PullThresholdSizeForTopic))
	}
	return opts
}

// producerOptions are the producer's options.
func (s *settings) producerOptions(instance string) []mqp.Option {
	sel, _ := s.selector()
	opts := []mqp.Option{mqp.WithInstanceName(instance), mqp.WithSendMsgTimeout(s.sendTimeout()), mqp.WithQueueSelector(sel)}
	if s.ProducerGroup != "" {
		opts = append(opts, mqp.WithGroupName(s.ProducerGroup))
	}
	if ns := s.nameServers(); len(ns) > 0 {
		opts = append(opts, mqp.WithNameServer(ns))
	}
	if s.NameServerDomain != "" {
		opts = append(opts, mqp.WithNameServerDomain(s.NameServerDomain))
	}
	if s.NameSpace != "" {
		opts = append(opts, mqp.WithNamespace(s.NameSpace))
	}
	if c, ok := s.credentials(); ok {
		opts = append(opts, mqp.WithCredentials(c))
	}
	if s.Retries > 0 {
		opts = append(opts, mqp.WithRetry(s.Retries))
	}
	return opts
}

package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// kafkaCreateTopic creates topic with partitions partitions on the Kafka at
// addr (topics created on first use have one, which a consumer group cannot
// share between its members).
func kafkaCreateTopic(t testing.TB, addr, topic string, partitions int32) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Admin.Timeout = 10 * time.Second
	admin, err := sarama.NewClusterAdmin([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("kafka admin %s: %v", addr, err)
	}
	defer admin.Close()
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

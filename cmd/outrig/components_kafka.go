//go:build !outrig_no_kafka

package main

import (
	"github.com/dapr/components-contrib/bindings"
	bkafka "github.com/dapr/components-contrib/bindings/kafka"
	pkafka "github.com/dapr/components-contrib/pubsub/kafka"
	"github.com/dapr/kit/logger"

	"github.com/outrig/outrig/components"
)

// registerKafka registers the Kafka components: pubsub.kafka, bindings.kafka.
// Build with -tags outrig_no_kafka to leave them (and their drivers) out.
func registerKafka(r *components.Registry) {
	r.RegisterPubSub("pubsub.kafka", "v1", pkafka.NewKafka)
	r.RegisterInputBinding("bindings.kafka", "v1", func(l logger.Logger) bindings.InputBinding { return bkafka.NewKafka(l) })
	r.RegisterOutputBinding("bindings.kafka", "v1", func(l logger.Logger) bindings.OutputBinding { return bkafka.NewKafka(l) })
}

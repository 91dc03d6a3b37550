//go:build outrig_no_kafka

package main

import "github.com/outrig/outrig/components"

// registerKafka: this build was made with -tags outrig_no_kafka.
func registerKafka(*components.Registry) {}

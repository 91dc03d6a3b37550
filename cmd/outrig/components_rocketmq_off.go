//go:build outrig_no_rocketmq

package main

import "github.com/outrig/outrig/components"

// registerRocketMQ: this build was made with -tags outrig_no_rocketmq.
func registerRocketMQ(*components.Registry) {}

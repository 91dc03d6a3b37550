//go:build outrig_no_redis

package main

import (
	"github.com/outrig/outrig/components"
	"github.com/outrig/outrig/internal/busypoll"
)

// registerRedis: this build was made with -tags outrig_no_redis.
func registerRedis(*components.Registry, *busypoll.Gate) {}

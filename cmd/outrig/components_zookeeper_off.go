//go:build outrig_no_zookeeper

package main

import "github.com/outrig/outrig/components"

// registerZooKeeper: this build was made with -tags outrig_no_zookeeper.
func registerZooKeeper(*components.Registry) {}

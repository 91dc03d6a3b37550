//go:build !outrig_no_zookeeper

package main

import (
	"github.com/outrig/outrig/components"
	nzookeeper "github.com/outrig/outrig/components/state/zookeeper"
)

// registerZooKeeper registers the ZooKeeper components: state.zookeeper (the control plane's ZooKeeper store is always built).
// Build with -tags outrig_no_zookeeper to leave them (and their drivers) out.
func registerZooKeeper(r *components.Registry) {
	r.RegisterState("state.zookeeper", "v1", nzookeeper.New)
}

//go:build !outrig_no_mongodb

package main

import (
	"github.com/outrig/outrig/components"
	nmongodb "github.com/outrig/outrig/components/state/mongodb"
)

// registerMongoDB registers the MongoDB components: state.mongodb.
// Build with -tags outrig_no_mongodb to leave them (and their drivers) out.
func registerMongoDB(r *components.Registry) {
	r.RegisterState("state.mongodb", "v1", nmongodb.New)
}

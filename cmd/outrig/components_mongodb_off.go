//go:build outrig_no_mongodb

package main

import "github.com/outrig/outrig/components"

// registerMongoDB: this build was made with -tags outrig_no_mongodb.
func registerMongoDB(*components.Registry) {}

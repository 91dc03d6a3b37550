//go:build !outrig_no_cron

package main

import (
	bcron "github.com/dapr/components-contrib/bindings/cron"

	"github.com/outrig/outrig/components"
)

// registerCron registers the cron components: bindings.cron.
// Build with -tags outrig_no_cron to leave them (and their drivers) out.
func registerCron(r *components.Registry) {
	r.RegisterInputBinding("bindings.cron", "v1", bcron.NewCron)
}

//go:build outrig_no_cron

package main

import "github.com/outrig/outrig/components"

// registerCron: this build was made with -tags outrig_no_cron.
func registerCron(*components.Registry) {}

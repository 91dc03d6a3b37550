//go:build outrig_no_http

package main

import "github.com/outrig/outrig/components"

// registerHTTP: this build was made with -tags outrig_no_http.
func registerHTTP(*components.Registry) {}

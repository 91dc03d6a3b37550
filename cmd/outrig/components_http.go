//go:build !outrig_no_http

package main

import (
	bhttp "github.com/dapr/components-contrib/bindings/http"

	"github.com/outrig/outrig/components"
)

// registerHTTP registers the HTTP components: bindings.http.
// Build with -tags outrig_no_http to leave them (and their drivers) out.
func registerHTTP(r *components.Registry) {
	r.RegisterOutputBinding("bindings.http", "v1", bhttp.NewHTTP)
}

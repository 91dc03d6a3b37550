//go:build !outrig_no_mysql

package main

import (
	bmysql "github.com/dapr/components-contrib/bindings/mysql"
	smysql "github.com/dapr/components-contrib/state/mysql"

	"github.com/outrig/outrig/components"
)

// registerMySQL registers the MySQL components: state.mysql, bindings.mysql.
// Build with -tags outrig_no_mysql to leave them (and their drivers) out.
func registerMySQL(r *components.Registry) {
	r.RegisterState("state.mysql", "v1", smysql.NewMySQLStateStore)
	r.RegisterOutputBinding("bindings.mysql", "v1", bmysql.NewMysql)
}

//go:build outrig_no_mysql

package main

import "github.com/outrig/outrig/components"

// registerMySQL: this build was made with -tags outrig_no_mysql.
func registerMySQL(*components.Registry) {}

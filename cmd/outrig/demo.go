package main

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/outrig/outrig/demo"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "demo [flags]", stderr)
	self, _ := os.Executable()
	binDir := filepath.Dir(self)
	bins := fs.String("bin-dir", binDir, "folder holding outrig, checkout-app and orders-app")
	resources := fs.String("resources", "examples/resources", "YAML the control plane starts with (copied to a temporary folder)")
	extra := fs.String("extra", "examples/demo-extra", "YAML files dropped into the resources folder while the demo runs")
	keep := fs.Bool("keep", false, "keep the work folder with every process's log")
	if err := parse(fs, args); err != nil {
		return err
	}
	return demo.Run(ctx, demo.Options{
		Outrig:      filepath.Join(*bins, "outrig"),
		CheckoutApp: filepath.Join(*bins, "checkout-app"),
		OrdersApp:   filepath.Join(*bins, "orders-app"),
		Resources:   *resources,
		Extra:       *extra,
		Out:         stdout,
		Keep:        *keep,
	})
}

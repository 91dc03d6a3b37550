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
	backends := fs.String("backends", "memory", "memory (in-memory components, nothing to run) or real (Redis and Kafka from scripts/backends.sh)")
	resources := fs.String("resources", "", "YAML the control plane starts with, copied to a temporary folder; empty: examples/resources, or examples/resources-real with --backends real")
	extra := fs.String("extra", "examples/demo-extra", "YAML files dropped into the resources folder while the demo runs")
	keep := fs.Bool("keep", false, "keep the work folder with every process's log")
	if err := parse(fs, args); err != nil {
		return err
	}
	var need map[string]string
	switch *backends {
	case "memory":
		if *resources == "" {
			*resources = "examples/resources"
		}
	case "real":
		if *resources == "" {
			*resources = "examples/resources-real"
		}
		need = map[string]string{"redis": "127.0.0.1:6379", "kafka": "127.0.0.1:9092"}
	default:
		fs.Usage()
		return errUsage
	}
	return demo.Run(ctx, demo.Options{
		Backends:    need,
		Outrig:      filepath.Join(*bins, "outrig"),
		CheckoutApp: filepath.Join(*bins, "checkout-app"),
		OrdersApp:   filepath.Join(*bins, "orders-app"),
		Resources:   *resources,
		Extra:       *extra,
		Out:         stdout,
		Keep:        *keep,
	})
}

package main

import (
	"context"
	"io"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrig/outrig/broker"
	"github.com/outrig/outrig/controlplane"
)

func runControlPlane(ctx context.Context, args []string, _ io.Writer, stderr io.Writer) error {
	fs := newFlagSet("control-plane", "control-plane --resources DIR [flags]", stderr)
	var o controlplane.Options
	fs.StringVar(&o.ResourcesDir, "resources", "", "folder of component/subscription/policy YAML, watched for changes; required")
	fs.StringVar(&o.ListenAddr, "listen", controlplane.DefaultListenAddr, "gRPC address of delta xDS (ADS), the registry and the embedded broker")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if o.ResourcesDir == "" {
		fs.Usage()
		return errUsage
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	o.Logger = log
	o.Metrics = prometheus.NewRegistry()
	b, err := broker.NewServer(broker.Options{})
	if err != nil {
		return err
	}
	o.Services = append(o.Services, b)
	cp, err := controlplane.New(o)
	if err != nil {
		return err
	}
	log.Info("control plane starting", "listen", o.ListenAddr, "resources", o.ResourcesDir)
	return cp.Run(ctx)
}

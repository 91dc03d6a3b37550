package main

import (
	"context"
	"fmt"
	"io"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrig/outrig/broker"
	"github.com/outrig/outrig/config"
	"github.com/outrig/outrig/controlplane"
	"github.com/outrig/outrig/controlplane/zkstore"
)

func runControlPlane(ctx context.Context, args []string, stdout io.Writer, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "load" {
		return runControlPlaneLoad(ctx, args[1:], stdout, stderr)
	}
	fs := newFlagSet("control-plane", "control-plane (--resources DIR | --store zk://HOST:PORT/ROOT) [flags]\n"+
		"       outrig control-plane load --store zk://HOST:PORT/ROOT --resources DIR", stderr)
	var o controlplane.Options
	fs.StringVar(&o.ResourcesDir, "resources", "", "folder of component/subscription/policy YAML, watched for changes (a standalone control plane)")
	fs.StringVar(&o.Store, "store", "", "shared store of a replicated control plane, zk://host:port[,host:port]/root (configuration written by 'control-plane load')")
	fs.DurationVar(&o.ReplicaGrace, "replica-grace", 0, "with --store: how long the instances of a replica that died keep being served while their sidecars re-register elsewhere (0: the lease TTL, 10s)")
	fs.StringVar(&o.ListenAddr, "listen", controlplane.DefaultListenAddr, "gRPC address of delta xDS (ADS), the registry and the embedded broker")
	fs.StringVar(&o.AdminListen, "admin-listen", "", "HTTP address of /healthz, /readyz and /metrics; empty disables")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if (o.ResourcesDir == "") == (o.Store == "") {
		fmt.Fprintln(stderr, "exactly one of --resources and --store is required")
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
	log.Info("control plane starting", "listen", o.ListenAddr, "resources", o.ResourcesDir, "store", o.Store)
	return cp.Run(ctx)
}

// runControlPlaneLoad validates a resources folder and writes it into a
// store, as the whole configuration of the replicas reading that store.
func runControlPlaneLoad(_ context.Context, args []string, stdout io.Writer, stderr io.Writer) error {
	fs := newFlagSet("control-plane load", "control-plane load --store zk://HOST:PORT/ROOT --resources DIR", stderr)
	store := fs.String("store", "", "store to write, zk://host:port[,host:port]/root; required")
	dir := fs.String("resources", "", "folder of component/subscription/policy YAML to load; required")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *store == "" || *dir == "" {
		fs.Usage()
		return errUsage
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	set, err := config.LoadDir(*dir)
	if err != nil {
		for _, e := range config.Errors(err) {
			fmt.Fprintln(stderr, e)
		}
		return fmt.Errorf("%s is not valid; nothing was written", *dir)
	}
	s, err := zkstore.Open(*store, zkstore.Options{Logger: log})
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := s.LoadConfig(set)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s → %s: %d created, %d updated, %d deleted, %d unchanged (%d components, %d subscriptions, %d policies)\n",
		*dir, *store, res.Created, res.Updated, res.Deleted, res.Unchanged,
		len(set.Components), len(set.Subscriptions), len(set.Policies))
	return nil
}

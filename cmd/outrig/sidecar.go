package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/outrig/outrig/internal/busypoll"
	rt "github.com/outrig/outrig/runtime"
	"github.com/outrig/outrig/sidecar"
)

// defaultBusyPoll is --busy-poll's default (docs/benchmarks.md has the
// measurements behind it).
const defaultBusyPoll = 200 * time.Microsecond

func runSidecar(ctx context.Context, args []string, _ io.Writer, stderr io.Writer) error {
	fs := newFlagSet("sidecar", "sidecar --app-id ID [--control-plane ADDR | --resources DIR] [flags]", stderr)
	var o sidecar.Options
	appIDs := fs.String("app-id", "", "app id served (comma-separated list with --mode host); required")
	mode := fs.String("mode", "pod", "pod (one app per sidecar) or host (several apps; each SDK connection names its app)")
	fs.StringVar(&o.ControlPlane, "control-plane", "", "control plane address host:port, or replicas host:port,host:port (failover in order); empty starts one in-process on --resources")
	fs.StringVar(&o.Resources, "resources", "", "folder of component/subscription/policy YAML for the in-process control plane")
	fs.StringVar(&o.Listen, "listen", sidecar.DefaultListen, "app API address: unix:///path (mode 0600) or host:port")
	fs.StringVar(&o.ShmSocket, "shm-listen", "auto", "Unix socket of the shared-memory transport: auto (the --listen socket + .shm), a path, or empty (off)")
	fs.StringVar(&o.InternalListen, "internal-listen", "127.0.0.1:0", "sidecar-to-sidecar gRPC address (port 0: any free port)")
	fs.StringVar(&o.AdvertiseHost, "advertise-host", "", "host other sidecars use to reach this one; empty: the internal listener's host")
	fs.StringVar(&o.AdminListen, "admin-listen", "127.0.0.1:9090", "admin HTTP address (/healthz /readyz /metrics /config_dump); empty disables")
	fs.IntVar(&o.AppPort, "app-port", 0, "port of the app's own HTTP or gRPC server for incoming invocations (0: use the SDK Serve stream)")
	fs.StringVar(&o.AppProtocol, "app-protocol", "http", "protocol of --app-port: http or grpc")
	fs.StringVar(&o.AppHost, "app-host", "127.0.0.1", "host of --app-port")
	fs.StringVar(&o.StateFile, "state-file", "", "file holding the last accepted configuration; empty: $TMPDIR/outrig-<app-id>.config.json")
	fs.StringVar(&o.Zone, "zone", "", "zone registered with the app's instances")
	fs.StringVar(&o.InstanceID, "instance-id", "", "unique id of this sidecar instance; empty: hostname-pid")
	fs.DurationVar(&o.ShutdownGrace, "shutdown-grace", 10*time.Second, "time calls in flight get to finish on shutdown")
	busyPoll := fs.Duration("busy-poll", defaultBusyPoll, "while the sidecar serves a single call, how long its shared-memory reader and Redis state connections poll before sleeping (saves thread wake-ups for a caller calling back to back, at up to a core of CPU while it does); 0 disables")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	for _, id := range strings.Split(*appIDs, ",") {
		if id = strings.TrimSpace(id); id != "" {
			o.AppIDs = append(o.AppIDs, id)
		}
	}
	o.Mode = rt.Mode(*mode)
	if o.Mode != rt.ModePod && o.Mode != rt.ModeHost {
		fs.Usage()
		return errUsage
	}
	if *busyPoll < 0 {
		return fmt.Errorf("--busy-poll %v: want a duration >= 0", *busyPoll)
	}
	o.BusyPoll = busypoll.NewGate(*busyPoll)
	o.Registry = newRegistry(o.BusyPoll)
	o.Log = log
	return sidecar.Run(ctx, o)
}

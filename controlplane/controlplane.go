// Package controlplane assembles `outrig control-plane`: a resources
// directory watched with fsnotify, the delta-xDS server (xds/server) and the
// instance registry (xds/registry), served on one gRPC server.
//
// The sidecar embeds it (Start on 127.0.0.1:0) when it is given no control
// plane address, so configuration always arrives over xDS.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	registryv1 "github.com/outrig/outrig/api/gen/outrig/registry/v1"
	"github.com/outrig/outrig/config"
	"github.com/outrig/outrig/xds/registry"
	"github.com/outrig/outrig/xds/resource"
	"github.com/outrig/outrig/xds/server"
)

// DefaultListenAddr is where Run listens when Options.ListenAddr is empty:
// loopback only, so that a control plane is never exposed by accident.
const DefaultListenAddr = "127.0.0.1:15010"

// Options configure a ControlPlane. ResourcesDir is required.
type Options struct {
	// ResourcesDir holds the Component, Subscription and Policy YAML files,
	// in any depth of subdirectories.
	ResourcesDir string
	// ListenAddr is the gRPC address. Empty: DefaultListenAddr for Run,
	// 127.0.0.1:0 (a free port) for Start.
	ListenAddr string
	// Metrics is where every metric of the control plane is registered
	// (xds, registry, resources dir). Nil: metrics are not exported.
	Metrics prometheus.Registerer
	// Logger; nil: slog.Default().
	Logger *slog.Logger
	// Debounce is how long the directory must be quiet before a change is
	// read. Default 50ms.
	Debounce time.Duration
	// Registry tunes leases and the freeze (TTLs, FreezeShare, ...). Its
	// OnChange, Metrics and Logger are set by the control plane.
	Registry registry.Options
	// EndpointsHold: for this long after start, sidecars that reconnect
	// keep the endpoints they hold for app ids not (yet) re-registered here,
	// instead of being told they are gone (see server.HoldRemovals); a
	// restarted control plane's registry is empty until the instances
	// re-register, which they do within a third of their lease. Removals
	// (deregistration, expiry) of endpoints a sidecar holds are delayed
	// until the hold ends. Default: half the registry's default TTL (5s);
	// negative: no hold.
	EndpointsHold time.Duration
	// GRPCOptions are added to the gRPC server's options.
	GRPCOptions []grpc.ServerOption
	// Services are extra gRPC services served next to ADS and the registry
	// (the embedded broker). Each is closed before the server stops, so
	// that its long-lived streams end, or when Start/Run fails.
	Services []Service
}

// Service is an extra gRPC service of the control plane.
type Service interface {
	Register(grpc.ServiceRegistrar)
	Close() error
}

// ControlPlane is one control plane. Build it with New, then call Start or
// Run once.
type ControlPlane struct {
	opts Options
	log  *slog.Logger
	xds  *server.Server
	reg  *registry.Registry
	dir  *dirSource

	reloads      prometheus.Counter
	failingFiles prometheus.Gauge

	startOnce sync.Once
}

// New validates opts and builds the parts; nothing runs until Start or Run.
func New(opts Options) (*ControlPlane, error) {
	if opts.ResourcesDir == "" {
		return nil, errors.New("control plane options: ResourcesDir is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 50 * time.Millisecond
	}
	log := opts.Logger.With("component", "control-plane")
	xds, err := server.New(server.Options{Metrics: opts.Metrics, Logger: log})
	if err != nil {
		return nil, err
	}
	cp := &ControlPlane{opts: opts, log: log, xds: xds}

	ropts := opts.Registry
	ropts.Metrics = opts.Metrics
	ropts.Logger = log
	ropts.OnChange = cp.publishEndpoints
	cp.reg, err = registry.New(ropts)
	if err != nil {
		return nil, err
	}

	cp.reloads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "outrig_controlplane_config_reloads_total",
		Help: "Times the resources directory was re-read and its union pushed.",
	})
	cp.failingFiles = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "outrig_controlplane_config_files_failing",
		Help: "Resource files whose latest content is rejected (their last good objects keep serving).",
	})
	if opts.Metrics != nil {
		for _, c := range []prometheus.Collector{cp.reloads, cp.failingFiles} {
			if err := opts.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("register control plane metrics: %w", err)
			}
		}
	}
	cp.dir = newDirSource(opts.ResourcesDir, opts.Debounce, log, cp.publishConfig,
		func(n int) { cp.failingFiles.Set(float64(n)) })
	return cp, nil
}

// XDS returns the xDS server (for inspection: Resource).
func (cp *ControlPlane) XDS() *server.Server { return cp.xds }

// Registry returns the instance registry.
func (cp *ControlPlane) Registry() *registry.Registry { return cp.reg }

// Run serves on ListenAddr (default DefaultListenAddr) until ctx ends or
// serving fails.
func (cp *ControlPlane) Run(ctx context.Context) error {
	addr := cp.opts.ListenAddr
	if addr == "" {
		addr = DefaultListenAddr
	}
	_, stop, errc, err := cp.start(ctx, addr)
	if err != nil {
		return err
	}
	defer stop()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// Start reads the resources directory, starts serving on ListenAddr
// (default 127.0.0.1:0) and returns the address it listens on. It returns
// once the configuration is loaded, so the first client gets all of it.
// stop (idempotent) ends streams, stops the server and waits for every
// goroutine; the control plane also stops when ctx ends (stop still waits).
func (cp *ControlPlane) Start(ctx context.Context) (addr string, stop func(), err error) {
	a := cp.opts.ListenAddr
	if a == "" {
		a = "127.0.0.1:0"
	}
	addr, stop, _, err = cp.start(ctx, a)
	return addr, stop, err
}

func (cp *ControlPlane) start(ctx context.Context, addr string) (string, func(), <-chan error, error) {
	started := false
	cp.startOnce.Do(func() { started = true })
	if !started {
		return "", nil, nil, errors.New("control plane already started")
	}
	if err := cp.dir.load(); err != nil {
		cp.closeServices()
		return "", nil, nil, err
	}
	hold := cp.opts.EndpointsHold
	if hold == 0 {
		hold = cp.opts.Registry.DefaultTTL / 2
		if hold <= 0 {
			hold = 5 * time.Second
		}
	}
	if hold > 0 {
		_ = cp.xds.HoldRemovals(resource.EndpointType, hold)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		_ = cp.dir.watcher.Close()
		cp.closeServices()
		return "", nil, nil, fmt.Errorf("control plane listen %s: %w", addr, err)
	}
	gopts := append([]grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}, cp.opts.GRPCOptions...)
	g := grpc.NewServer(gopts...)
	cp.xds.Register(g)
	registryv1.RegisterRegistryServer(g, registry.NewService(cp.reg))
	for _, svc := range cp.opts.Services {
		svc.Register(g)
	}

	runCtx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := g.Serve(lis); err != nil {
			errc <- fmt.Errorf("control plane serve: %w", err)
		}
	}()
	go func() { defer wg.Done(); cp.dir.run(runCtx) }()
	go func() { defer wg.Done(); _ = cp.reg.Run(runCtx) }()

	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			cp.xds.Close() // end the long-lived streams so GracefulStop can finish
			cp.closeServices()
			done := make(chan struct{})
			go func() { g.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				g.Stop()
				<-done
			}
			wg.Wait()
		})
	}
	// Stop with ctx too, without leaking a goroutine past stop.
	go func() {
		<-runCtx.Done()
		stop()
	}()
	cp.log.Info("control plane serving", "addr", lis.Addr().String(), "resources", cp.opts.ResourcesDir)
	return lis.Addr().String(), stop, errc, nil
}

func (cp *ControlPlane) closeServices() {
	for _, svc := range cp.opts.Services {
		if err := svc.Close(); err != nil {
			cp.log.Warn("closing a control plane service failed", "error", err)
		}
	}
}

// publishConfig pushes the directory's union; the xDS server sends only
// what changed.
func (cp *ControlPlane) publishConfig(set *config.Set) {
	cp.reloads.Inc()
	comps := make(map[string]proto.Message, len(set.Components))
	for k, v := range set.Components {
		comps[k] = v
	}
	subs := make(map[string]proto.Message, len(set.Subscriptions))
	for k, v := range set.Subscriptions {
		subs[k] = v
	}
	pols := make(map[string]proto.Message, len(set.Policies))
	for k, v := range set.Policies {
		pols[k] = v
	}
	for _, u := range []struct {
		typeURL string
		res     map[string]proto.Message
	}{
		{resource.ComponentType, comps},
		{resource.PolicyType, pols},
		{resource.SubscriptionType, subs},
	} {
		if err := cp.xds.SetResources(u.typeURL, u.res); err != nil {
			// config.ParseFile validated every object; this is a bug.
			cp.log.Error("pushing configuration failed", "type", u.typeURL, "error", err)
		}
	}
}

// publishEndpoints pushes the instances that changed, one Endpoint
// resource each.
func (cp *ControlPlane) publishEndpoints(up map[string]*configv1.Endpoint, removed []string) {
	res := make(map[string]proto.Message, len(up))
	for k, v := range up {
		res[k] = v
	}
	if err := cp.xds.UpdateResources(resource.EndpointType, res, removed); err != nil {
		cp.log.Error("pushing endpoints failed", "error", err)
	}
}

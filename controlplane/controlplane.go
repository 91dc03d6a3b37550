// Package controlplane assembles `outrig control-plane`: a source of
// configuration, the delta-xDS server (xds/server) and the instance
// registry (xds/registry), served on one gRPC server.
//
// Two sources exist. A resources directory watched with fsnotify makes a
// standalone control plane, whose registry publishes straight to its xDS
// server. A store (ZooKeeper, package zkstore) makes one replica of a
// replicated control plane: the configuration comes from the store, the
// leases this replica holds are written to the store, and the xDS server
// publishes every replica's instances as read back from the store, so that
// all replicas serve identical resources (and versions) and a sidecar may
// fail over from one to another without receiving anything again.
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
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	registryv1 "github.com/outrig/outrig/api/gen/outrig/registry/v1"
	"github.com/outrig/outrig/config"
	"github.com/outrig/outrig/controlplane/zkstore"
	"github.com/outrig/outrig/xds/registry"
	"github.com/outrig/outrig/xds/resource"
	"github.com/outrig/outrig/xds/server"
)

// DefaultListenAddr is where Run listens when Options.ListenAddr is empty:
// loopback only, so that a control plane is never exposed by accident.
const DefaultListenAddr = "127.0.0.1:15010"

// controlPlaneBufferSize is the read and write buffer of each sidecar's
// connection to the control plane (see Run).
const controlPlaneBufferSize = 4 << 10

// Options configure a ControlPlane. Exactly one of ResourcesDir and Store
// is required.
type Options struct {
	// ResourcesDir holds the Component, Subscription and Policy YAML files,
	// in any depth of subdirectories.
	ResourcesDir string
	// Store is the URL of the shared store of a replicated control plane,
	// zk://host:port[,host:port]/root. Its configuration is written by
	// zkstore.Store.LoadConfig (`outrig control-plane load`).
	Store string
	// StoreSessionTimeout is the ZooKeeper session timeout: how long after
	// this replica vanished its instances' nodes go. Default 4s.
	StoreSessionTimeout time.Duration
	// ReplicaGrace: when the replica holding an instance's lease dies, the
	// other replicas keep serving the instance this long, while its sidecar
	// registers with one of them. Default: the registry's default TTL (10s).
	ReplicaGrace time.Duration
	// AdminListen, when set, serves /healthz, /readyz and /metrics (the
	// Metrics registry, when it is also a prometheus.Gatherer) over HTTP.
	AdminListen string
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
	// StartTimeout bounds the first read of the store. Default 30s.
	StartTimeout time.Duration
	// Registry tunes leases and the freeze (TTLs, FreezeShare, ...). Its
	// OnChange, Metrics and Logger are set by the control plane.
	Registry registry.Options
	// EndpointsHold: for this long after start, sidecars that reconnect
	// keep the endpoints they hold for app ids not (yet) re-registered here,
	// instead of being told they are gone (see server.HoldRemovals); a
	// restarted control plane's registry is empty until the instances
	// re-register, which they do within a third of their lease. Removals
	// (deregistration, expiry) of endpoints a sidecar holds are delayed
	// until the hold ends. Default: half the registry's default TTL (5s)
	// with ResourcesDir; none with Store (a replica starts with every
	// instance of the store); negative: no hold.
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
	opts  Options
	log   *slog.Logger
	xds   *server.Server
	reg   *registry.Registry
	dir   *dirSource  // standalone
	store *storeParts // replicated

	reloads      prometheus.Counter
	failingFiles prometheus.Gauge

	startOnce sync.Once
}

// New validates opts and builds the parts; nothing runs until Start or Run.
func New(opts Options) (*ControlPlane, error) {
	switch {
	case opts.ResourcesDir == "" && opts.Store == "":
		return nil, errors.New("control plane options: ResourcesDir or Store is required")
	case opts.ResourcesDir != "" && opts.Store != "":
		return nil, errors.New("control plane options: ResourcesDir and Store are exclusive (load a folder into the store with `outrig control-plane load`)")
	}
	if opts.Store != "" {
		if _, _, err := zkstore.ParseURL(opts.Store); err != nil {
			return nil, fmt.Errorf("control plane options: %w", err)
		}
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 30 * time.Second
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
	ropts.OnChange = cp.registryChanged
	ropts.OnDeregister = cp.deregistered
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
	if opts.ResourcesDir != "" {
		cp.dir = newDirSource(opts.ResourcesDir, opts.Debounce, log, cp.publishConfig,
			func(n int) { cp.failingFiles.Set(float64(n)) })
	}
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
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		cp.closeServices()
		return "", nil, nil, fmt.Errorf("control plane listen %s: %w", addr, err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	fail := func(err error) (string, func(), <-chan error, error) {
		cancel()
		wg.Wait()
		_ = lis.Close()
		cp.closeSources()
		cp.closeServices()
		return "", nil, nil, err
	}
	// The configuration (and, from a store, every instance) is loaded
	// before serving, so that the first clients get all of it.
	if cp.dir != nil {
		if err := cp.dir.load(); err != nil {
			return fail(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); cp.dir.run(runCtx) }()
	} else if err := cp.startStore(runCtx, &wg, lis.Addr().String()); err != nil {
		return fail(err)
	}
	hold := cp.opts.EndpointsHold
	if hold == 0 && cp.dir != nil {
		hold = cp.opts.Registry.DefaultTTL / 2
		if hold <= 0 {
			hold = 5 * time.Second
		}
	}
	if hold > 0 {
		_ = cp.xds.HoldRemovals(resource.EndpointType, hold)
	}
	var admin *http.Server
	if cp.opts.AdminListen != "" {
		if admin, err = cp.startAdmin(&wg); err != nil {
			return fail(err)
		}
	}
	gopts := append([]grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// A control plane holds one connection per sidecar that is idle
		// nearly all the time; grpc-go's default 32 KiB read and write
		// buffers per connection were 160 MB of a 5,000-sidecar fleet's heap
		// (fleet simulator, docs/benchmarks.md). Small per-connection buffers
		// and write buffers taken from a shared pool only while writing cost
		// nothing measurable at that scale.
		grpc.ReadBufferSize(controlPlaneBufferSize),
		grpc.WriteBufferSize(controlPlaneBufferSize),
		grpc.SharedWriteBuffer(true),
		grpc.ForceServerCodecV2(exactCodec{}),
	}, cp.opts.GRPCOptions...)
	g := grpc.NewServer(gopts...)
	cp.xds.Register(g)
	registryv1.RegisterRegistryServer(g, registry.NewService(cp.reg))
	for _, svc := range cp.opts.Services {
		svc.Register(g)
	}

	errc := make(chan error, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := g.Serve(lis); err != nil {
			errc <- fmt.Errorf("control plane serve: %w", err)
		}
	}()
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
			if admin != nil {
				sctx, scancel := context.WithTimeout(context.Background(), time.Second)
				_ = admin.Shutdown(sctx)
				scancel()
			}
			wg.Wait()
			cp.closeSources()
		})
	}
	// Stop with ctx too, without leaking a goroutine past stop.
	go func() {
		<-runCtx.Done()
		stop()
	}()
	source := cp.opts.ResourcesDir
	if cp.store != nil {
		source = cp.opts.Store
	}
	cp.log.Info("control plane serving", "addr", lis.Addr().String(), "source", source)
	return lis.Addr().String(), stop, errc, nil
}

// closeSources releases what the sources hold once their goroutines ended
// (the directory's watcher is closed by its own goroutine).
func (cp *ControlPlane) closeSources() {
	if cp.store != nil {
		cp.store.store.Close() // the session ends: this replica's instance nodes go
	}
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

// registryChanged receives the changes of the leases this control plane
// holds: they go to the store (which every replica, this one included,
// reads back and publishes), or straight to the xDS server.
func (cp *ControlPlane) registryChanged(up map[string]*configv1.Endpoint, removed []string) {
	if cp.store != nil {
		cp.store.writer.Publish(up, removed)
		return
	}
	cp.publishEndpoints(up, removed)
}

// deregistered removes a deregistered instance from the store, whichever
// replica wrote it.
func (cp *ControlPlane) deregistered(appID, instanceID string) {
	if cp.store != nil {
		cp.store.writer.Deregister(appID, instanceID)
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

// Package sidecar assembles and runs `outrig sidecar`: the runtime, its
// gRPC servers (app API and sidecar-to-sidecar), the admin endpoint, the
// delta-xDS client (with an in-process control plane when no address is
// given) and the registration of its apps. Start and stop happen in a fixed
// order, and a failed start undoes what was started.
package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"

	apishm "github.com/outrig/outrig/api/shm"

	"github.com/outrig/outrig/admin"
	"github.com/outrig/outrig/components"
	"github.com/outrig/outrig/internal/busypoll"
	"github.com/outrig/outrig/invoke"
	"github.com/outrig/outrig/pubsub"
	rt "github.com/outrig/outrig/runtime"
	"github.com/outrig/outrig/service"
	"github.com/outrig/outrig/telemetry"
	"github.com/outrig/outrig/transport/calls"
	grpctransport "github.com/outrig/outrig/transport/grpc"
	shmtransport "github.com/outrig/outrig/transport/shm"
)

// Options configure a sidecar.
type Options struct {
	AppIDs       []string
	Mode         rt.Mode
	ControlPlane string // host:port; "" starts one in-process on Resources
	Resources    string
	Listen       string // app API: unix:///path or host:port
	// ShmSocket is the Unix socket of the shared-memory transport: "auto"
	// (the --listen socket path + ".shm" when --listen is a Unix socket),
	// a path, or "" (off).
	ShmSocket      string
	InternalListen string // sidecar-to-sidecar gRPC, host:port
	AdvertiseHost  string // host registered for the internal address; default: the listener's
	AdminListen    string
	AppPort        int
	AppProtocol    string // http | grpc
	AppHost        string
	StateFile      string // persisted configuration
	Zone           string
	InstanceID     string
	ShutdownGrace  time.Duration
	Registry       *components.Registry
	// BusyPoll, when not nil, lets a lone call's backend reads and the
	// shared-memory reader poll instead of sleeping (internal/busypoll,
	// --busy-poll); main shares it with the Registry's components that
	// poll.
	BusyPoll *busypoll.Gate
	Log      *slog.Logger
}

func (o *Options) defaults() error {
	if len(o.AppIDs) == 0 {
		return errors.New("--app-id is required")
	}
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.InternalListen == "" {
		o.InternalListen = "127.0.0.1:0"
	}
	if o.AppHost == "" {
		o.AppHost = "127.0.0.1"
	}
	if o.AppProtocol == "" {
		o.AppProtocol = "http"
	}
	if o.AppProtocol != "http" && o.AppProtocol != "grpc" {
		return fmt.Errorf("--app-protocol %q: want http or grpc", o.AppProtocol)
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 10 * time.Second
	}
	if o.InstanceID == "" {
		host, _ := os.Hostname()
		o.InstanceID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if o.StateFile == "" {
		o.StateFile = filepath.Join(os.TempDir(), "outrig-"+o.AppIDs[0]+".config.json")
	}
	if o.ControlPlane == "" && o.Resources == "" {
		return errors.New("give --control-plane ADDR or --resources DIR")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return nil
}

// Sidecar is a running sidecar.
type Sidecar struct {
	opts     Options
	log      *slog.Logger
	metrics  *telemetry.Metrics
	runtime  *rt.Runtime
	remote   *invoke.Remote
	appSrv   *grpc.Server
	intSrv   *grpc.Server
	adminSrv *http.Server
	config   *configClient
	stops    []func(context.Context) error // undo steps, run in reverse
	wg       sync.WaitGroup
	done     chan struct{}

	// InternalAddr is the registered sidecar-to-sidecar address.
	InternalAddr string
	// AdminAddr is the admin endpoint's address.
	AdminAddr string
	// ControlPlaneAddr is the control plane used (in-process or given).
	ControlPlaneAddr string
	// ShmPath is the shared-memory socket, or "" when off.
	ShmPath string
}

// Start brings a sidecar up. On error everything started is stopped again.
func Start(ctx context.Context, opts Options) (*Sidecar, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	s := &Sidecar{opts: opts, log: opts.Log, done: make(chan struct{})}
	if err := s.start(ctx); err != nil {
		_ = s.undo(context.Background())
		return nil, err
	}
	return s, nil
}

// start brings the parts up in order, recording an undo step for each; on
// error the caller runs the steps recorded so far.
func (s *Sidecar) start(ctx context.Context) (err error) {
	opts := s.opts

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = telemetry.New(reg)

	// Control plane: given, or in-process on the resources folder.
	s.ControlPlaneAddr = opts.ControlPlane
	if s.ControlPlaneAddr == "" {
		addr, stop, err := startInProcessControlPlane(ctx, opts.Resources, s.log)
		if err != nil {
			return fmt.Errorf("in-process control plane: %w", err)
		}
		s.ControlPlaneAddr = addr
		s.stops = append(s.stops, func(context.Context) error { stop(); return nil })
		s.log.Info("started in-process control plane", "addr", addr, "resources", opts.Resources)
	}

	govDeps, err := governanceDeps(reg, s.log)
	if err != nil {
		return err
	}
	s.runtime, err = rt.New(rt.Options{
		AppIDs: opts.AppIDs, Mode: opts.Mode, Registry: opts.Registry, Log: s.log,
		AppChannel: s.appChannel, Governance: govDeps, ControlPlaneAddr: s.ControlPlaneAddr,
		OnOutcome: func(app string, k pubsub.Key, o pubsub.Outcome) {
			s.metrics.Delivery(app, k.PubSub, k.Topic, string(o))
		},
	})
	if err != nil {
		return err
	}
	s.stops = append(s.stops, func(ctx context.Context) error { return s.runtime.Close(ctx) })

	// Sidecar-to-sidecar server first: its address is registered.
	intL, err := net.Listen("tcp", opts.InternalListen)
	if err != nil {
		return fmt.Errorf("--internal-listen %q: %w", opts.InternalListen, err)
	}
	s.InternalAddr = advertised(intL.Addr().String(), opts.AdvertiseHost)
	s.config, err = newConfigClient(ctx, s, reg)
	if err != nil {
		intL.Close()
		return err
	}
	s.stops = append(s.stops, func(context.Context) error { s.config.stop(); return nil })

	s.remote = invoke.NewRemote(s.config, invoke.NewBalancers(), s.runtime.Local)
	s.stops = append(s.stops, func(context.Context) error { return s.remote.Close() })
	svc := service.New(s.runtime, s.remote)
	internal := &service.Internal{Service: svc}
	intAct := &grpctransport.Activity{}
	s.intSrv = grpctransport.NewInternalServer(internal, s.metrics, intAct, opts.BusyPoll)
	intMux := grpctransport.RegisterMultiplex(s.intSrv, calls.NewInternal(internal, s.metrics, opts.BusyPoll), intAct)
	s.serveGRPC("internal", s.intSrv, intL, intAct.Idle)
	// Calls from other sidecars on open Multiplex streams are refused from
	// the start of the shutdown, like new unary calls: callers retry elsewhere.
	s.stops = append(s.stops, func(context.Context) error { intMux.Drain(); return nil })

	// App API.
	appL, err := listen(opts.Listen)
	if err != nil {
		return err
	}
	dispatcher := calls.New(svc, s.metrics, opts.BusyPoll)
	act := &grpctransport.Activity{}
	s.appSrv = grpctransport.NewAppServer(svc, s.metrics, act, opts.BusyPoll)
	mux := grpctransport.RegisterMultiplex(s.appSrv, dispatcher, act)
	s.serveGRPC("app API", s.appSrv, appL, act.Idle)
	// Runs before the server's graceful stop (stops run in reverse): calls
	// arriving on open Multiplex streams are refused like new unary calls.
	s.stops = append(s.stops, func(context.Context) error { mux.Drain(); return nil })
	if err := s.serveShm(dispatcher.Polling()); err != nil {
		return err
	}

	// Admin.
	if opts.AdminListen != "" {
		adminL, err := net.Listen("tcp", opts.AdminListen)
		if err != nil {
			return fmt.Errorf("--admin-listen %q: %w", opts.AdminListen, err)
		}
		s.AdminAddr = adminL.Addr().String()
		s.adminSrv = &http.Server{Handler: admin.Handler(s.runtime, reg, s.ready), ReadHeaderTimeout: 5 * time.Second}
		s.wg.Add(1)
		go func() { defer s.wg.Done(); _ = s.adminSrv.Serve(adminL) }()
		s.stops = append(s.stops, func(ctx context.Context) error { return s.adminSrv.Shutdown(ctx) })
	}

	// Registration last: others may call us from now on.
	if err := s.config.register(ctx); err != nil {
		return err
	}
	s.log.Info("sidecar started", "apps", opts.AppIDs, "mode", opts.Mode, "listen", opts.Listen,
		"internal", s.InternalAddr, "admin", s.AdminAddr, "control_plane", s.ControlPlaneAddr, "shm", s.ShmPath)
	return nil
}

func advertised(addr, host string) string {
	if host == "" {
		return addr
	}
	_, port, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(host, port)
}

// serveGRPC serves srv on l until shutdown. The shutdown step stops srv
// gracefully: calls in flight get up to --shutdown-grace, then the server
// stops (streams such as Subscribe and Serve never end by themselves). When
// idle is given and reports true during the graceful stop — every accepted
// call finished, only the SDKs' idle Multiplex streams left — the server
// stops at once instead of waiting out the grace for them.
func (s *Sidecar) serveGRPC(name string, srv *grpc.Server, l net.Listener, idle func() bool) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("gRPC server stopped", "server", name, "err", err)
		}
	}()
	grace := s.opts.ShutdownGrace
	s.stops = append(s.stops, func(ctx context.Context) error {
		done := make(chan struct{})
		go func() { srv.GracefulStop(); close(done) }()
		expired := time.After(grace)
		var poll <-chan time.Time
		if idle != nil {
			t := time.NewTicker(idlePoll)
			defer t.Stop()
			poll = t.C
		}
		for {
			select {
			case <-done:
				return nil
			case <-poll:
				if !idle() {
					continue
				}
			case <-expired: // streams (Subscribe, Serve) do not end by themselves
			case <-ctx.Done():
			}
			srv.Stop()
			return nil
		}
	})
}

// idlePoll is how often a gracefully stopping app server checks whether
// only idle Multiplex streams are left.
const idlePoll = 20 * time.Millisecond

// ShmPath returns the shared-memory socket of an app API address for
// "auto", or "" when the address is not a Unix socket.
func ShmPath(listen string) string {
	if path, ok := strings.CutPrefix(listen, "unix://"); ok && path != "" {
		return path + ".shm"
	}
	return ""
}

func (s *Sidecar) serveShm(d *calls.Dispatcher) error {
	path := s.opts.ShmSocket
	if path == "auto" {
		path = ShmPath(s.opts.Listen)
	}
	if path == "" {
		return nil
	}
	if _, err := os.Lstat(path); err == nil {
		_ = os.Remove(path) // stale socket of a previous run
	}
	// A lone caller is one the whole sidecar serves alone: two lone
	// callers of two connections must not both keep a core busy.
	srv, err := apishm.Listen(path, apishm.ServerOptions{LoneSpin: s.opts.BusyPoll.Max(), LoneOnlyIf: s.opts.BusyPoll.Lone})
	if err != nil {
		return fmt.Errorf("--shm-listen %q: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		srv.Close()
		return fmt.Errorf("--shm-listen %q: chmod: %w", path, err)
	}
	s.ShmPath = path
	s.shmMetrics(srv)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(shmtransport.NewHandler(d)); err != nil {
			s.log.Debug("shared-memory server stopped", "err", err)
		}
	}()
	s.stops = append(s.stops, func(context.Context) error { return srv.Close() })
	return nil
}

// shmMetrics exports the shared-memory server's counters and the busy-poll
// gate's.
func (s *Sidecar) shmMetrics(srv *apishm.Server) {
	m := s.metrics
	stat := func(f func(apishm.ServerStats) int64) func() float64 {
		return func() float64 { return float64(f(srv.Stats())) }
	}
	m.GaugeFunc("outrig_shm_connections", "Shared-memory connections open.",
		stat(func(st apishm.ServerStats) int64 { return st.Connections }))
	m.CounterFunc("outrig_shm_calls_total", "Calls served over shared memory.",
		stat(func(st apishm.ServerStats) int64 { return st.Calls }))
	m.CounterFunc("outrig_shm_rescues_total", "Calls run on a shared-memory connection's reader that overran, so that another goroutine took over reading.",
		stat(func(st apishm.ServerStats) int64 { return st.Rescues }))
	m.CounterFunc("outrig_shm_lone_calls_total", "Calls of a lone shared-memory caller served by the polling reader (--busy-poll).",
		stat(func(st apishm.ServerStats) int64 { return st.LoneRuns }))
	m.CounterFunc("outrig_shm_async_calls_total", "Overlapping shared-memory calls started without a handler goroutine and answered by the goroutine that completed them (GetState on state.redis).",
		stat(func(st apishm.ServerStats) int64 { return st.AsyncCalls }))
	m.CounterFunc("outrig_shm_wakeups_total", "Doorbells rung to wake a shared-memory client that slept waiting for its reply.",
		stat(func(st apishm.ServerStats) int64 { return st.Wakeups }))
	m.CounterFunc("outrig_busy_poll_reads_total", "Backend socket reads made in polling mode, for a lone shared-memory call (--busy-poll).",
		func() float64 { return float64(s.opts.BusyPoll.Polls()) })
}

// runtimeDone is closed when the sidecar stops (never, before Stop).
func (s *Sidecar) runtimeDone() <-chan struct{} { return s.done }

func (s *Sidecar) ready() bool {
	select {
	case <-s.runtime.Ready():
		return true
	default:
		return false
	}
}

// Runtime exposes the runtime (tests, admin).
func (s *Sidecar) Runtime() *rt.Runtime { return s.runtime }

// appChannel builds the app-port channel for app ids (pod mode only: one app).
func (s *Sidecar) appChannel(appID string) invoke.AppChannel {
	if s.opts.AppPort == 0 {
		return nil
	}
	addr := net.JoinHostPort(s.opts.AppHost, fmt.Sprint(s.opts.AppPort))
	if s.opts.AppProtocol == "grpc" {
		ch, err := invoke.NewGRPCChannel(addr)
		if err != nil {
			s.log.Error("app port", "err", err)
			return nil
		}
		return ch
	}
	return invoke.NewHTTPChannel(addr)
}

// Stop shuts down in order: deregister (callers stop routing here), stop
// accepting and drain calls in flight (up to the grace period), close
// components, stop the xDS client and the in-process control plane.
func (s *Sidecar) Stop(ctx context.Context) error {
	if s.config != nil {
		s.config.deregister(ctx)
	}
	err := s.undo(ctx)
	s.wg.Wait()
	return err
}

func (s *Sidecar) undo(ctx context.Context) error {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	var errs []error
	for i := len(s.stops) - 1; i >= 0; i-- {
		errs = append(errs, s.stops[i](ctx))
	}
	s.stops = nil
	return errors.Join(errs...)
}

// Run starts a sidecar and stops it when ctx ends.
func Run(ctx context.Context, opts Options) error {
	s, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	<-ctx.Done()
	s.log.Info("shutting down")
	stopCtx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownGrace+5*time.Second)
	defer cancel()
	return s.Stop(stopCtx)
}

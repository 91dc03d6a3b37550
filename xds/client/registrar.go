package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	registryv1 "github.com/outrig/outrig/api/gen/outrig/registry/v1"
)

// RegistrarOptions describe the instance to register. InstanceID, Address
// and at least one app id are required.
type RegistrarOptions struct {
	InstanceID string            // unique per sidecar instance
	Address    string            // host:port where this sidecar serves invocations
	Zone       string            // optional
	Metadata   map[string]string // optional
	AppIDs     []string          // the apps this sidecar serves
	// TTL is the lease asked for; the registry may clamp it. Default 10s.
	// Leases are renewed every granted TTL/3.
	TTL time.Duration
	// RetryBase and RetryMax bound the delay between failed registrations
	// (exponential with jitter). Defaults 200ms and 10s.
	RetryBase time.Duration
	RetryMax  time.Duration
	Logger    *slog.Logger
}

// Registrar keeps one lease per app id alive in the control plane's
// registry: it registers each app id, renews every TTL/3, registers again
// when the registry answers NOT_FOUND (the lease expired, the control plane
// restarted, or the connection failed over to another replica, which does
// not hold this lease), and deregisters on Close. When the connection
// becomes ready again after a failure (a restarted control plane, another
// replica) it renews at once instead of waiting for the next period, so the
// registration moves with the connection within a round trip.
//
// Lifecycle: NewRegistrar starts it; Close stops it. Safe for concurrent use.
type Registrar struct {
	opts   RegistrarOptions
	log    *slog.Logger
	rc     registryv1.RegistryClient
	cancel context.CancelFunc
	done   chan struct{}

	registeredOnce sync.Once
	registered     chan struct{}
	reconnect      chan struct{} // the connection became ready again; capacity 1
	watchDone      chan struct{} // closed when watchState returns; nil without it
	closeOnce      sync.Once
	closeErr       error
}

// NewRegistrar validates opts and starts registering over conn (for
// example Client.Conn()).
func NewRegistrar(conn grpc.ClientConnInterface, opts RegistrarOptions) (*Registrar, error) {
	switch {
	case opts.InstanceID == "":
		return nil, errors.New("registrar options: InstanceID is required")
	case opts.Address == "":
		return nil, errors.New("registrar options: Address is required")
	case len(opts.AppIDs) == 0:
		return nil, errors.New("registrar options: AppIDs is required")
	}
	if _, _, err := net.SplitHostPort(opts.Address); err != nil {
		return nil, fmt.Errorf("registrar options: Address %q is not host:port: %w", opts.Address, err)
	}
	for i, id := range opts.AppIDs {
		if id == "" {
			return nil, fmt.Errorf("registrar options: AppIDs[%d] is empty", i)
		}
	}
	if opts.TTL <= 0 {
		opts.TTL = 10 * time.Second
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = 200 * time.Millisecond
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Registrar{
		opts:       opts,
		log:        opts.Logger.With("component", "registrar", "instance", opts.InstanceID),
		rc:         registryv1.NewRegistryClient(conn),
		cancel:     cancel,
		done:       make(chan struct{}),
		registered: make(chan struct{}),
		reconnect:  make(chan struct{}, 1),
	}
	if sw, ok := conn.(stateWatcher); ok {
		r.watchDone = make(chan struct{})
		go r.watchState(ctx, sw)
	}
	go r.run(ctx)
	return r, nil
}

// stateWatcher is the part of *grpc.ClientConn the Registrar uses to learn
// that the connection came back.
type stateWatcher interface {
	GetState() connectivity.State
	WaitForStateChange(context.Context, connectivity.State) bool
}

// watchState signals reconnect whenever the connection becomes ready after
// having been something else.
func (r *Registrar) watchState(ctx context.Context, sw stateWatcher) {
	defer close(r.watchDone)
	st := sw.GetState()
	for sw.WaitForStateChange(ctx, st) {
		next := sw.GetState()
		if next == connectivity.Ready && st != connectivity.Ready {
			select {
			case r.reconnect <- struct{}{}:
			default:
			}
		}
		st = next
	}
}

// Registered is closed once every app id was registered at least once.
func (r *Registrar) Registered() <-chan struct{} { return r.registered }

// Close stops renewing and deregisters every app id, within ctx. It returns
// the first deregistration error (the leases then expire on their own).
func (r *Registrar) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		r.cancel()
		<-r.done
		if r.watchDone != nil {
			<-r.watchDone
		}
		var errs []error
		for _, app := range r.opts.AppIDs {
			_, err := r.rc.Deregister(ctx, &registryv1.DeregisterRequest{AppId: app, InstanceId: r.opts.InstanceID})
			if err != nil {
				errs = append(errs, fmt.Errorf("deregister %s: %w", app, err))
			}
		}
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}

func (r *Registrar) run(ctx context.Context) {
	defer close(r.done)
	leases := map[string]time.Duration{} // app id → granted ttl; absent: not registered
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-r.reconnect:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		// Renew what is registered; a NOT_FOUND lease is registered again below.
		for app, ttl := range leases {
			cctx, cancel := context.WithTimeout(ctx, max(ttl/3, time.Second))
			_, err := r.rc.Renew(cctx, &registryv1.RenewRequest{AppId: app, InstanceId: r.opts.InstanceID})
			cancel()
			switch {
			case err == nil:
			case status.Code(err) == codes.NotFound:
				r.log.Info("lease lost; registering again", "app", app)
				delete(leases, app)
			default:
				r.log.Warn("renew failed", "app", app, "error", err)
			}
		}
		for _, app := range r.opts.AppIDs {
			if _, ok := leases[app]; ok {
				continue
			}
			ttl, err := r.register(ctx, app)
			if err != nil {
				if ctx.Err() == nil {
					r.log.Warn("register failed", "app", app, "error", err)
				}
				continue
			}
			leases[app] = ttl
		}
		var next time.Duration
		if len(leases) < len(r.opts.AppIDs) {
			next = backoffDelay(r.opts.RetryBase, r.opts.RetryMax, failures)
			failures++
		} else {
			failures = 0
			r.registeredOnce.Do(func() { close(r.registered) })
			next = r.opts.TTL
			for _, ttl := range leases {
				next = min(next, ttl)
			}
			next /= 3
		}
		timer.Reset(next)
	}
}

func (r *Registrar) register(ctx context.Context, app string) (time.Duration, error) {
	cctx, cancel := context.WithTimeout(ctx, max(r.opts.TTL/3, time.Second))
	defer cancel()
	resp, err := r.rc.Register(cctx, &registryv1.RegisterRequest{
		AppId: app,
		Endpoint: &configv1.Endpoint{
			InstanceId: r.opts.InstanceID,
			Address:    r.opts.Address,
			Zone:       r.opts.Zone,
			Metadata:   r.opts.Metadata,
		},
		Ttl: durationpb.New(r.opts.TTL),
	})
	if err != nil {
		return 0, err
	}
	ttl := resp.GetTtl().AsDuration()
	if ttl <= 0 {
		ttl = r.opts.TTL
	}
	r.log.Debug("registered", "app", app, "ttl", ttl)
	return ttl, nil
}

package sidecar

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"

	"github.com/outrig/outrig/broker"
	"github.com/outrig/outrig/controlplane"
	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/xds/client"
	"github.com/outrig/outrig/xds/resource"
)

// configClient connects the sidecar to its control plane: the delta-xDS
// client feeding the runtime, the endpoint resolver of invocations, and
// the registration of the apps served.
type configClient struct {
	s         *Sidecar
	xds       *client.Client
	registrar *client.Registrar
	applied   *prometheus.CounterVec
}

func newConfigClient(_ context.Context, s *Sidecar, _ *prometheus.Registry) (*configClient, error) {
	cc := &configClient{s: s}
	handler := client.HandlerFunc(func(typeURL string, updated map[string]proto.Message, removed []string) map[string]error {
		switch typeURL {
		case resource.EndpointType:
			return checkEndpoints(updated) // indexed per app by the client; read on each invocation
		case resource.ServiceEndpointsType:
			return nil // not subscribed
		}
		rejected := s.runtime.Apply(typeURL, updated, removed)
		short := typeURL[len("type.googleapis.com/"):]
		for name, err := range rejected {
			s.log.Warn("configuration rejected (NACK); the previous version keeps serving", "type", short, "name", name, "err", err)
			s.metrics.Config.WithLabelValues(short, "rejected").Inc()
		}
		if n := len(updated) + len(removed) - len(rejected); n > 0 {
			s.metrics.Config.WithLabelValues(short, "applied").Add(float64(n))
			s.log.Info("configuration applied", "type", short, "updated", len(updated)-len(rejected), "removed", len(removed))
		}
		return rejected
	})
	x, err := client.New(client.Options{
		Target:      s.ControlPlaneAddr,
		NodeID:      s.opts.InstanceID,
		Cluster:     "outrig",
		AppIDs:      s.opts.AppIDs,
		Handler:     handler,
		PersistPath: s.opts.StateFile,
		Logger:      s.log,
	})
	if err != nil {
		return nil, fmt.Errorf("xds client: %w", err)
	}
	cc.xds = x
	go func() {
		select {
		case <-x.Ready():
			s.runtime.MarkReady()
		case <-s.runtimeDone():
		}
	}()
	return cc, nil
}

// endpointsWait bounds the first lookup of an app id's endpoints.
const endpointsWait = 5 * time.Second

// checkEndpoints rejects endpoints with an unusable address.
func checkEndpoints(updated map[string]proto.Message) map[string]error {
	var rejected map[string]error
	for name, m := range updated {
		ep := m.(*configv1.Endpoint)
		if _, _, err := net.SplitHostPort(ep.GetAddress()); err != nil {
			if rejected == nil {
				rejected = map[string]error{}
			}
			rejected[name] = fmt.Errorf("address %q: %w", ep.GetAddress(), err)
		}
	}
	return rejected
}

// register starts the registration of every app served (renewed in the
// background; the control plane may be down: the registrar keeps trying).
func (cc *configClient) register(context.Context) error {
	r, err := client.NewRegistrar(cc.xds.Conn(), client.RegistrarOptions{
		InstanceID: cc.s.opts.InstanceID,
		Address:    cc.s.InternalAddr,
		Zone:       cc.s.opts.Zone,
		AppIDs:     cc.s.opts.AppIDs,
		Logger:     cc.s.log,
	})
	if err != nil {
		return fmt.Errorf("registration: %w", err)
	}
	cc.registrar = r
	return nil
}

func (cc *configClient) deregister(ctx context.Context) {
	if cc.registrar == nil {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := cc.registrar.Close(dctx); err != nil {
		cc.s.log.Warn("deregistration failed; the lease will expire", "err", err)
	}
}

func (cc *configClient) stop() { _ = cc.xds.Close() }

// Endpoints implements invoke.Resolver: the live instances of appID, from
// the client's per-app view of the on-demand Endpoint collection "<appID>/*"
// (a map lookup once the app id was resolved; each join or leave updates
// the view as it arrives). The last endpoints received keep answering while
// the control plane is unreachable.
func (cc *configClient) Endpoints(ctx context.Context, appID string) ([]*configv1.Endpoint, error) {
	if eps, ok := cc.xds.CachedEndpoints(appID); ok {
		return eps, nil
	}
	if err := resource.CheckID("app_id", appID); err != nil {
		return nil, errkind.InvalidArgument("app_id", "%q must not contain '/' or '*'", appID)
	}
	// While disconnected the client runs no not-found timer: bound the wait.
	ctx, cancel := context.WithTimeout(ctx, endpointsWait)
	defer cancel()
	eps, found, err := cc.xds.Endpoints(ctx, appID)
	if err != nil {
		return nil, fmt.Errorf("endpoints of %q: %w: %w", appID, errkind.ErrUnavailable, err)
	}
	if !found {
		return nil, fmt.Errorf("app id %q is not registered with the control plane: %w", appID, errkind.ErrNotFound)
	}
	return eps, nil
}

func startInProcessControlPlane(ctx context.Context, dir string, log *slog.Logger) (string, func(), error) {
	b, err := broker.NewServer(broker.Options{})
	if err != nil {
		return "", nil, err
	}
	cp, err := controlplane.New(controlplane.Options{ResourcesDir: dir, ListenAddr: "127.0.0.1:0",
		Logger: log.With("component", "control-plane"), Metrics: prometheus.NewRegistry(), Services: []controlplane.Service{b}})
	if err != nil {
		return "", nil, err
	}
	return cp.Start(ctx)
}

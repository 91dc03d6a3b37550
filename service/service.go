// Package service implements the app-facing building-block API
// (runtimev1.RuntimeServer) once for every transport: request validation,
// app lookup, the governance chain of each call, and dispatch to the
// building blocks. Errors are errkind errors; transports convert them to
// gRPC codes at the edge.
//
// A Service is safe for concurrent use. Each unary call holds its app's
// configuration snapshot for its duration (so a config change never breaks
// it); streams do not hold a snapshot.
package service

import (
	"context"
	"fmt"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"

	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/invoke"
	rt "github.com/outrig/outrig/runtime"
)

// Version is the runtime version reported by GetMetadata.
var Version = "dev"

// Governance kinds (PolicyTarget.kind).
const (
	KindInvoke  = "invoke"
	KindState   = "state"
	KindPubSub  = "pubsub"
	KindBinding = "binding"
)

type appKey struct{}

// WithAppID returns ctx carrying the calling app id (from the transport:
// the outrig-app-id header, or the shm handshake).
func WithAppID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, appKey{}, id)
}

// AppIDFrom returns the app id carried by ctx, or "".
func AppIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(appKey{}).(string)
	return id
}

// AppIDHeader is the gRPC metadata key naming the calling app in host mode.
const AppIDHeader = "outrig-app-id"

// Service is the building-block API.
type Service struct {
	runtimev1.UnimplementedRuntimeServer
	rt     *rt.Runtime
	remote *invoke.Remote
	mode   string
}

// New returns the service over a runtime; remote performs invocations of
// other apps.
func New(r *rt.Runtime, remote *invoke.Remote) *Service {
	return &Service{rt: r, remote: remote, mode: string(r.Mode())}
}

// MetricsApp names the app of a call for metrics: the header's app id, or
// the only app in pod mode.
func (s *Service) MetricsApp(headerAppID string) string {
	if headerAppID == "" && s.rt.Mode() == rt.ModePod {
		return s.rt.AppIDs()[0]
	}
	return headerAppID
}

// enter resolves the calling app and acquires its snapshot.
func (s *Service) enter(ctx context.Context) (*rt.App, *rt.Snapshot, error) {
	app, err := s.rt.App(AppIDFrom(ctx))
	if err != nil {
		return nil, nil, err
	}
	return app, app.Acquire(), nil
}

func notFound(what, name string) error {
	if name == "" {
		return errkind.Required(what)
	}
	return fmt.Errorf("%s %q: %w", what, name, errkind.ErrNotFound)
}

// GetMetadata implements RuntimeServer.
func (s *Service) GetMetadata(ctx context.Context, _ *runtimev1.GetMetadataRequest) (*runtimev1.GetMetadataResponse, error) {
	app, snap, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer snap.Release()
	out := &runtimev1.GetMetadataResponse{AppId: app.ID, RuntimeVersion: Version, Mode: s.mode, ConfigVersion: snap.Version}
	for _, name := range snap.ComponentNames() {
		c := snap.Component(name)
		info := &runtimev1.ComponentInfo{Name: name, Type: c.GetType(), Version: c.GetVersion(), Status: "READY"}
		if st := snap.State[name]; st != nil {
			info.Capabilities = st.Features()
		}
		out.Components = append(out.Components, info)
	}
	out.Subscriptions = app.Subs.Subscriptions()
	for _, p := range snap.PolicyList {
		out.Policies = append(out.Policies, policyInfo(p))
	}
	return out, nil
}

func policyInfo(p *configv1.Policy) *runtimev1.PolicyInfo {
	info := &runtimev1.PolicyInfo{Name: p.GetName()}
	for _, t := range p.GetTargets() {
		m := t.GetMethod()
		if m == "" {
			m = "*"
		}
		target := t.GetKind() + "/" + t.GetName() + "/" + m
		if t.GetCaller() != "" {
			target += " from " + t.GetCaller()
		}
		info.Targets = append(info.Targets, target)
	}
	add := func(set bool, name string) {
		if set {
			info.Policies = append(info.Policies, name)
		}
	}
	add(p.GetTimeout() != nil, "timeout")
	add(p.GetRetry() != nil, "retry")
	add(p.GetRateLimit() != nil, "rateLimit")
	add(p.GetAdaptiveLimit() != nil, "adaptiveLimit")
	add(p.GetCircuitBreaker() != nil, "circuitBreaker")
	add(p.GetBulkhead() != nil, "bulkhead")
	add(p.GetRandomDrop() != nil, "randomDrop")
	add(p.GetLoadBalancer() != nil, "loadBalancer")
	return info
}

package service

import (
	"context"
	"fmt"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"

	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/balancer"
	"github.com/outrig/outrig/invoke"
)

// Invoke implements RuntimeServer: a call to another app.
func (s *Service) Invoke(ctx context.Context, req *runtimev1.InvokeRequest) (*runtimev1.InvokeResponse, error) {
	if req.GetAppId() == "" {
		return nil, errkind.Required("app_id")
	}
	if req.GetMethod() == "" {
		return nil, errkind.Required("method")
	}
	app, snap, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer snap.Release()
	var resp *runtimev1.InvokeResponse
	chain := snap.Policies.Lookup(KindInvoke, req.GetAppId(), req.GetMethod(), app.ID)
	var lb *balancer.Config
	if cfg, ok := chain.LoadBalancer(); ok {
		lb = &cfg
	}
	err = chain.Do(ctx, func(ctx context.Context) error {
		var err error
		resp, err = s.remote.Invoke(ctx, app.ID, req, lb)
		return err
	})
	return resp, err
}

// Serve implements RuntimeServer: the app's stream of incoming invocations.
func (s *Service) Serve(stream runtimev1.Runtime_ServeServer) error {
	ctx := stream.Context()
	app, err := s.rt.App(AppIDFrom(ctx))
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("serve: waiting for initial request: %w", err)
	}
	if first.GetInitial() == nil {
		return errkind.InvalidArgument("initial", "the first message on a Serve stream must be initial")
	}
	ss := invoke.NewServeStream(func(inv *runtimev1.Invocation) error {
		return stream.Send(&runtimev1.ServeResponse{Message: &runtimev1.ServeResponse_Invocation{Invocation: inv}})
	})
	defer ss.Close()
	if err := stream.Send(&runtimev1.ServeResponse{Message: &runtimev1.ServeResponse_Ready{Ready: &runtimev1.SubscribeReady{}}}); err != nil {
		return err
	}
	detach := app.Local.Attach(ss)
	defer detach()
	for {
		m, err := stream.Recv()
		if err != nil {
			return nil
		}
		r := m.GetReply()
		if r == nil {
			return errkind.InvalidArgument("reply", "only replies may follow the initial message")
		}
		if err := ss.Reply(r); err != nil {
			return err
		}
	}
}

// Internal serves sidecar-to-sidecar calls (runtimev1.InternalServer).
type Internal struct {
	runtimev1.UnimplementedInternalServer
	Service *Service
}

// CallLocal implements InternalServer: a call from another sidecar to an
// app served here, under the callee-side policies of that app.
func (in *Internal) CallLocal(ctx context.Context, req *runtimev1.InternalInvokeRequest) (*runtimev1.InvokeResponse, error) {
	if req.GetTargetAppId() == "" {
		return nil, errkind.Required("target_app_id")
	}
	if req.GetRequest() == nil {
		return nil, errkind.Required("request")
	}
	app, err := in.Service.rt.App(req.GetTargetAppId())
	if err != nil {
		return nil, err
	}
	return app.Local.Call(ctx, req.GetCallerAppId(), req.GetRequest())
}

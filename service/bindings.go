package service

import (
	"context"
	"fmt"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"

	"github.com/outrig/outrig/bindings"
	"github.com/outrig/outrig/errkind"
)

// InvokeBinding implements RuntimeServer.
func (s *Service) InvokeBinding(ctx context.Context, req *runtimev1.InvokeBindingRequest) (*runtimev1.InvokeBindingResponse, error) {
	app, snap, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer snap.Release()
	out := snap.Output[req.GetName()]
	if out == nil {
		return nil, notFound("output binding", req.GetName())
	}
	var data []byte
	var md map[string]string
	err = snap.Policies.Lookup(KindBinding, req.GetName(), req.GetOperation(), app.ID).Do(ctx, func(ctx context.Context) error {
		var err error
		data, md, err = out.Invoke(ctx, req.GetOperation(), req.GetData(), req.GetMetadata())
		return err
	})
	if err != nil {
		return nil, err
	}
	return &runtimev1.InvokeBindingResponse{Data: data, Metadata: md}, nil
}

// SubscribeBinding implements RuntimeServer: events of an input binding.
func (s *Service) SubscribeBinding(stream runtimev1.Runtime_SubscribeBindingServer) error {
	ctx := stream.Context()
	app, err := s.rt.App(AppIDFrom(ctx))
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("subscribe binding: waiting for initial request: %w", err)
	}
	init := first.GetInitial()
	if init == nil {
		return errkind.InvalidArgument("initial", "the first message on a SubscribeBinding stream must be initial")
	}
	st := bindings.NewStream(func(ev *runtimev1.BindingEvent) error {
		return stream.Send(&runtimev1.SubscribeBindingResponse{Message: &runtimev1.SubscribeBindingResponse_Event{Event: ev}})
	})
	defer st.Close()
	if err := stream.Send(&runtimev1.SubscribeBindingResponse{Message: &runtimev1.SubscribeBindingResponse_Ready{Ready: &runtimev1.SubscribeReady{}}}); err != nil {
		return err
	}
	detach, ok := app.AttachBinding(init.GetName(), st)
	if !ok {
		return notFound("input binding", init.GetName())
	}
	defer detach()
	return recvAcks(stream.Recv, st.Ack)
}

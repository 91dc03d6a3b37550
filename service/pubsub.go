package service

import (
	"context"
	"fmt"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"

	"github.com/outrig/outrig/ackstream"
	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/pubsub"
)

// Publish implements RuntimeServer.
func (s *Service) Publish(ctx context.Context, req *runtimev1.PublishRequest) (*runtimev1.PublishResponse, error) {
	if req.GetTopic() == "" {
		return nil, errkind.Required("topic")
	}
	app, snap, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer snap.Release()
	ps := snap.PubSub[req.GetPubsubName()]
	if ps == nil {
		return nil, notFound("pubsub", req.GetPubsubName())
	}
	msg := pubsub.Message{Topic: req.GetTopic(), Data: req.GetData(), ContentType: req.GetDataContentType(), Metadata: req.GetMetadata()}
	err = snap.Policies.Lookup(KindPubSub, ps.Name(), req.GetTopic(), app.ID).Do(ctx, func(ctx context.Context) error {
		return ps.Publish(ctx, msg)
	})
	if err != nil {
		return nil, err
	}
	return &runtimev1.PublishResponse{}, nil
}

// BulkPublish implements RuntimeServer.
func (s *Service) BulkPublish(ctx context.Context, req *runtimev1.BulkPublishRequest) (*runtimev1.BulkPublishResponse, error) {
	if req.GetTopic() == "" {
		return nil, errkind.Required("topic")
	}
	app, snap, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer snap.Release()
	ps := snap.PubSub[req.GetPubsubName()]
	if ps == nil {
		return nil, notFound("pubsub", req.GetPubsubName())
	}
	entries := make([]pubsub.BulkEntry, len(req.GetEntries()))
	for i, e := range req.GetEntries() {
		entries[i] = pubsub.BulkEntry{EntryID: e.GetEntryId(), Data: e.GetEvent(), ContentType: e.GetContentType(), Metadata: e.GetMetadata()}
	}
	var failed map[string]error
	err = snap.Policies.Lookup(KindPubSub, ps.Name(), req.GetTopic(), app.ID).Do(ctx, func(ctx context.Context) error {
		var err error
		failed, err = ps.BulkPublish(ctx, req.GetTopic(), entries, req.GetMetadata())
		return err
	})
	if err != nil {
		return nil, err
	}
	out := &runtimev1.BulkPublishResponse{}
	for _, e := range req.GetEntries() {
		if ferr := failed[e.GetEntryId()]; ferr != nil {
			out.FailedEntries = append(out.FailedEntries, &runtimev1.BulkPublishFailedEntry{EntryId: e.GetEntryId(), Error: ferr.Error()})
		}
	}
	return out, nil
}

// Subscribe implements RuntimeServer: the app's streaming subscription.
func (s *Service) Subscribe(stream runtimev1.Runtime_SubscribeServer) error {
	ctx := stream.Context()
	app, err := s.rt.App(AppIDFrom(ctx))
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("subscribe: waiting for initial request: %w", err)
	}
	init := first.GetInitial()
	if init == nil {
		return errkind.InvalidArgument("initial", "the first message on a Subscribe stream must be initial")
	}
	st := ackstream.New(func(ev *runtimev1.TopicEvent) error {
		return stream.Send(&runtimev1.SubscribeResponse{Message: &runtimev1.SubscribeResponse_Event{Event: ev}})
	}, func(ev *runtimev1.TopicEvent) string { return ev.Id })
	defer st.Close()
	// Send ready before attaching, so no event overtakes it.
	if err := stream.Send(&runtimev1.SubscribeResponse{Message: &runtimev1.SubscribeResponse_Ready{Ready: &runtimev1.SubscribeReady{}}}); err != nil {
		return err
	}
	detach, err := app.Subs.Attach(pubsub.Key{PubSub: init.GetPubsubName(), Topic: init.GetTopic()},
		pubsub.SubOptions{DeadLetterTopic: init.GetDeadLetterTopic(), MaxRedeliveries: int(init.GetMaxRedeliveries()), Metadata: init.GetMetadata()}, st)
	if err != nil {
		return err
	}
	defer detach()
	return recvAcks(stream.Recv, st.Ack)
}

// recvAcks reads acks until the stream ends.
func recvAcks[R interface{ GetAck() *runtimev1.EventAck }](recv func() (R, error), ack func(string, runtimev1.EventStatus) error) error {
	for {
		m, err := recv()
		if err != nil {
			return nil // the app closed its stream or went away: not an error of ours
		}
		a := m.GetAck()
		if a == nil {
			return errkind.InvalidArgument("ack", "only acks may follow the initial message")
		}
		if err := ack(a.GetId(), a.GetStatus()); err != nil {
			return err
		}
	}
}

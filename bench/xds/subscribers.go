package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/outrig/outrig/xds/client"
	"github.com/outrig/outrig/xds/resource"
)

// fleetAppID is the app id every simulated sidecar declares. No resource of
// the simulation is scoped, so every sidecar receives everything.
const fleetAppID = "fleet"

func nodeOf(idx int) *core.Node {
	return &core.Node{Id: fmt.Sprintf("sim-%05d", idx), Cluster: "fleet", Metadata: resource.NodeMetadata([]string{fleetAppID})}
}

// startDelta starts a raw delta ADS subscriber: one stream on its own
// connection, wildcard on the three configuration types, endpoints by name,
// ACKing every response. It decodes nothing beyond the gRPC message itself.
func (f *fleet) startDelta(addr string, idx int, m endpointModel, endpointSubs []string) error {
	conn, err := f.dial(addr)
	if err != nil {
		return err
	}
	s := &subscriber{idx: idx}
	f.run(fmt.Sprint("delta-", idx), func(ctx context.Context) error {
		st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
		if err != nil {
			return fmt.Errorf("open delta stream: %w", err)
		}
		first := true
		for i, t := range simTypes(m) {
			req := &discovery.DeltaDiscoveryRequest{TypeUrl: t, ResourceNamesSubscribe: []string{"*"}}
			if i == 3 {
				req.ResourceNamesSubscribe = endpointSubs
			}
			if first {
				req.Node, first = nodeOf(idx), false
			}
			if err := st.Send(req); err != nil {
				return fmt.Errorf("subscribe %s: %w", t, err)
			}
		}
		for {
			resp, err := st.Recv()
			if err != nil {
				return err
			}
			u := &update{typeURL: resp.GetTypeUrl(), removed: resp.GetRemovedResources()}
			for _, r := range resp.GetResources() {
				u.resources = append(u.resources, item{name: r.GetName(), raw: r.GetResource().GetValue()})
			}
			f.observe(s, u)
			if err := st.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}); err != nil {
				return fmt.Errorf("ack: %w", err)
			}
		}
	})
	return nil
}

// startSotw starts a state-of-the-world subscriber of the baseline (see
// sotw.go): same connection and message types as delta, but every response
// is the full set of its type.
func (f *fleet) startSotw(addr string, idx int, m endpointModel, endpointSubs []string) error {
	conn, err := f.dial(addr)
	if err != nil {
		return err
	}
	s := &subscriber{idx: idx}
	names := func(t string) []string {
		if typeIndex(t) == 3 {
			return endpointSubs
		}
		return nil // wildcard
	}
	f.run(fmt.Sprint("sotw-", idx), func(ctx context.Context) error {
		st, err := conn.NewStream(ctx, &sotwDesc.Streams[0], sotwMethod)
		if err != nil {
			return fmt.Errorf("open sotw stream: %w", err)
		}
		first := true
		for _, t := range simTypes(m) {
			req := &discovery.DiscoveryRequest{TypeUrl: t, ResourceNames: names(t)}
			if first {
				req.Node, first = nodeOf(idx), false
			}
			if err := st.SendMsg(req); err != nil {
				return fmt.Errorf("subscribe %s: %w", t, err)
			}
		}
		for {
			resp := &discovery.DiscoveryResponse{}
			if err := st.RecvMsg(resp); err != nil {
				return err
			}
			u := &update{typeURL: resp.GetTypeUrl(), full: true, resources: make([]item, 0, len(resp.GetResources()))}
			for _, a := range resp.GetResources() {
				u.resources = append(u.resources, item{raw: a.GetValue()})
			}
			f.observe(s, u)
			ack := &discovery.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(),
				ResponseNonce: resp.GetNonce(), ResourceNames: names(resp.GetTypeUrl())}
			if err := st.SendMsg(ack); err != nil {
				return fmt.Errorf("ack: %w", err)
			}
		}
	})
	return nil
}

// startXDSClient starts a subscriber that is a real xds/client.Client (the
// sidecar's own client: decoding, per-resource cache, ACK/NACK). Probes see
// the accepted messages re-encoded, which costs the simulator, not the
// control plane.
func (f *fleet) startXDSClient(addr string, idx int, model endpointModel, apps []string) error {
	s := &subscriber{idx: idx, synced: true} // synced is counted below, not by observe
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := client.New(client.Options{
		Target:      addr,
		DialOptions: []grpc.DialOption{grpc.WithStatsHandler(&f.bytes)},
		NodeID:      nodeOf(idx).GetId(),
		Cluster:     "fleet",
		AppIDs:      []string{fleetAppID},
		Logger:      quiet,
		Handler: client.HandlerFunc(func(typeURL string, updated map[string]proto.Message, removed []string) map[string]error {
			u := &update{typeURL: typeURL, removed: removed}
			for name, m := range updated {
				raw, err := resource.Marshal(m)
				if err != nil {
					return map[string]error{name: err}
				}
				u.resources = append(u.resources, item{name: name, raw: raw})
			}
			f.observe(s, u)
			return nil
		}),
	})
	if err != nil {
		return fmt.Errorf("xds client %d: %w", idx, err)
	}
	f.onClose(func() { _ = c.Close() })
	f.run(fmt.Sprint("xds-", idx), func(ctx context.Context) error {
		if err := model.WatchXDS(ctx, c, apps); err != nil {
			return err
		}
		select {
		case <-c.Ready():
		case <-ctx.Done():
			return nil
		}
		f.synced.Add(1)
		return nil
	})
	return nil
}

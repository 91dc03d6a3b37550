package outrig

import (
	"context"
	"fmt"
	"time"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// appIDHeader is the gRPC metadata key naming the calling app (host mode).
const appIDHeader = "outrig-app-id"

// grpcTransport is the transport over one shared grpc.ClientConn.
type grpcTransport struct {
	cc *grpc.ClientConn
	rc runtimev1.RuntimeClient
}

// newGRPCTransport dials target lazily (grpc.NewClient) and starts
// connecting in the background so that the first call does not pay for it.
// When appID is set every call carries the outrig-app-id header. User dial
// options come last and override the defaults (insecure credentials and a
// short reconnect backoff: the sidecar is local).
func newGRPCTransport(target, appID string, dialOpts []grpc.DialOption) (*grpcTransport, error) {
	opts := make([]grpc.DialOption, 0, 3+len(dialOpts))
	opts = append(opts,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// The sidecar is local: after it restarts, reconnect within about a
		// tenth of a second instead of gRPC's default first backoff of 1s.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
	)
	if appID != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(appIDCreds{md: map[string]string{appIDHeader: appID}}))
	}
	opts = append(opts, dialOpts...)
	cc, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("outrig: dial %q: %w", target, err)
	}
	cc.Connect()
	return &grpcTransport{cc: cc, rc: runtimev1.NewRuntimeClient(cc)}, nil
}

// appIDCreds adds the outrig-app-id header to every RPC, unary and
// streaming, without wrapping each call's context. The map is built once
// and only read by gRPC.
type appIDCreds struct{ md map[string]string }

func (c appIDCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return c.md, nil
}

func (appIDCreds) RequireTransportSecurity() bool { return false }

func (t *grpcTransport) invoke(ctx context.Context, req *runtimev1.InvokeRequest) (*runtimev1.InvokeResponse, error) {
	var tr metadata.MD
	resp, err := t.rc.Invoke(ctx, req, grpc.Trailer(&tr))
	if err != nil {
		return nil, fromRPC("Invoke", err, tr)
	}
	return resp, nil
}

func (t *grpcTransport) getState(ctx context.Context, req *runtimev1.GetStateRequest) (*runtimev1.GetStateResponse, error) {
	var tr metadata.MD
	resp, err := t.rc.GetState(ctx, req, grpc.Trailer(&tr))
	if err != nil {
		return nil, fromRPC("GetState", err, tr)
	}
	return resp, nil
}

func (t *grpcTransport) getBulkState(ctx context.Context, req *runtimev1.GetBulkStateRequest) (*runtimev1.GetBulkStateResponse, error) {
	var tr metadata.MD
	resp, err := t.rc.GetBulkState(ctx, req, grpc.Trailer(&tr))
	if err != nil {
		return nil, fromRPC("GetBulkState", err, tr)
	}
	return resp, nil
}

func (t *grpcTransport) saveState(ctx context.Context, req *runtimev1.SaveStateRequest) error {
	var tr metadata.MD
	_, err := t.rc.SaveState(ctx, req, grpc.Trailer(&tr))
	return fromRPC("SaveState", err, tr)
}

func (t *grpcTransport) deleteState(ctx context.Context, req *runtimev1.DeleteStateRequest) error {
	var tr metadata.MD
	_, err := t.rc.DeleteState(ctx, req, grpc.Trailer(&tr))
	return fromRPC("DeleteState", err, tr)
}

func (t *grpcTransport) deleteBulkState(ctx context.Context, req *runtimev1.DeleteBulkStateRequest) error {
	var tr metadata.MD
	_, err := t.rc.DeleteBulkState(ctx, req, grpc.Trailer(&tr))
	return fromRPC("DeleteBulkState", err, tr)
}

func (t *grpcTransport) executeStateTransaction(ctx context.Context, req *runtimev1.ExecuteStateTransactionRequest) error {
	var tr metadata.MD
	_, err := t.rc.ExecuteStateTransaction(ctx, req, grpc.Trailer(&tr))
	return fromRPC("ExecuteStateTransaction", err, tr)
}

func (t *grpcTransport) publish(ctx context.Context, req *runtimev1.PublishRequest) error {
	var tr metadata.MD
	_, err := t.rc.Publish(ctx, req, grpc.Trailer(&tr))
	return fromRPC("Publish", err, tr)
}

func (t *grpcTransport) bulkPublish(ctx context.Context, req *runtimev1.BulkPublishRequest) (*runtimev1.BulkPublishResponse, error) {
	var tr metadata.MD
	resp, err := t.rc.BulkPublish(ctx, req, grpc.Trailer(&tr))
	if err != nil {
		return nil, fromRPC("BulkPublish", err, tr)
	}
	return resp, nil
}

func (t *grpcTransport) invokeBinding(ctx context.Context, req *runtimev1.InvokeBindingRequest) (*runtimev1.InvokeBindingResponse, error) {
	var tr metadata.MD
	resp, err := t.rc.InvokeBinding(ctx, req, grpc.Trailer(&tr))
	if err != nil {
		return nil, fromRPC("InvokeBinding", err, tr)
	}
	return resp, nil
}

func (t *grpcTransport) getMetadata(ctx context.Context) (*runtimev1.GetMetadataResponse, error) {
	var tr metadata.MD
	resp, err := t.rc.GetMetadata(ctx, &runtimev1.GetMetadataRequest{}, grpc.Trailer(&tr))
	if err != nil {
		return nil, fromRPC("GetMetadata", err, tr)
	}
	return resp, nil
}

func (t *grpcTransport) subscribe(ctx context.Context) (bidiStream[runtimev1.SubscribeRequest, runtimev1.SubscribeResponse], error) {
	s, err := t.rc.Subscribe(ctx)
	if err != nil {
		return nil, fromRPC("Subscribe", err, nil)
	}
	return s, nil
}

func (t *grpcTransport) subscribeBinding(ctx context.Context) (bidiStream[runtimev1.SubscribeBindingRequest, runtimev1.SubscribeBindingResponse], error) {
	s, err := t.rc.SubscribeBinding(ctx)
	if err != nil {
		return nil, fromRPC("SubscribeBinding", err, nil)
	}
	return s, nil
}

func (t *grpcTransport) serve(ctx context.Context) (bidiStream[runtimev1.ServeRequest, runtimev1.ServeResponse], error) {
	s, err := t.rc.Serve(ctx)
	if err != nil {
		return nil, fromRPC("Serve", err, nil)
	}
	return s, nil
}

func (t *grpcTransport) close() error { return t.cc.Close() }

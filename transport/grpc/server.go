// Package grpc is the gRPC transport of the app API and of the
// sidecar-to-sidecar API: a thin adapter that extracts the calling app id,
// converts errors to statuses at the edge and records metrics. No business
// logic lives here.
package grpc

import (
	"context"
	"path"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"

	"github.com/outrig/outrig/service"
	"github.com/outrig/outrig/telemetry"
	"github.com/outrig/outrig/transport/edge"
)

// NewAppServer returns a gRPC server serving the app API.
func NewAppServer(svc *service.Service, m *telemetry.Metrics, opts ...grpc.ServerOption) *grpc.Server {
	opts = append(opts,
		grpc.ChainUnaryInterceptor(unary(m, svc.MetricsApp)),
		grpc.ChainStreamInterceptor(stream(m, svc.MetricsApp)),
		grpc.MaxRecvMsgSize(16<<20), grpc.MaxSendMsgSize(16<<20),
	)
	s := grpc.NewServer(opts...)
	runtimev1.RegisterRuntimeServer(s, svc)
	return s
}

// NewInternalServer returns a gRPC server serving sidecar-to-sidecar calls.
func NewInternalServer(in *service.Internal, m *telemetry.Metrics) *grpc.Server {
	s := grpc.NewServer(grpc.ChainUnaryInterceptor(unary(m, func(string) string { return "" })), grpc.MaxRecvMsgSize(16<<20), grpc.MaxSendMsgSize(16<<20))
	runtimev1.RegisterInternalServer(s, in)
	return s
}

func appID(ctx context.Context) string {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(service.AppIDHeader); len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// component names the component a request addresses, for metrics.
func component(req any) string {
	switch r := req.(type) {
	case interface{ GetStoreName() string }:
		return r.GetStoreName()
	case interface{ GetPubsubName() string }:
		return r.GetPubsubName()
	case interface{ GetAppId() string }:
		return r.GetAppId()
	case interface{ GetTargetAppId() string }:
		return r.GetTargetAppId()
	case interface{ GetName() string }:
		return r.GetName()
	}
	return ""
}

func unary(m *telemetry.Metrics, label func(string) string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		start := time.Now()
		app := appID(ctx)
		resp, err := h(service.WithAppID(ctx, app), req)
		st, retryAfter := edge.Status(err)
		if retryAfter != "" {
			_ = grpc.SetTrailer(ctx, metadata.Pairs(edge.RetryAfterKey, retryAfter))
		}
		if m != nil {
			m.API(label(app), path.Base(info.FullMethod), component(req), st.Code().String(), time.Since(start))
		}
		if err != nil {
			return nil, st.Err()
		}
		return resp, nil
	}
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrappedStream) Context() context.Context { return w.ctx }

func stream(m *telemetry.Metrics, label func(string) string) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		start := time.Now()
		app := appID(ss.Context())
		err := h(srv, &wrappedStream{ServerStream: ss, ctx: service.WithAppID(ss.Context(), app)})
		st, _ := edge.Status(err)
		if m != nil {
			m.API(label(app), path.Base(info.FullMethod), "", st.Code().String(), time.Since(start))
		}
		if err != nil {
			return st.Err()
		}
		return nil
	}
}

// Package grpc is the gRPC transport of the app API and of the
// sidecar-to-sidecar API: a thin adapter that extracts the calling app id,
// converts errors to statuses at the edge and records metrics. No business
// logic lives here.
package grpc

import (
	"context"
	"path"
	"runtime"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"

	"github.com/outrig/outrig/internal/busypoll"
	"github.com/outrig/outrig/service"
	"github.com/outrig/outrig/telemetry"
	"github.com/outrig/outrig/transport/edge"
)

// streamWorkers is the number of goroutines each gRPC server keeps to run
// calls (grpc.NumStreamWorkers): a call handed to a kept goroutine runs on a
// stack already grown by earlier calls, where a new goroutine per call grows
// and copies its stack on every call (runtime.morestack: 8.3% of the gRPC
// UDS sidecar's CPU under GetState 100 B with 16 callers, 0.3% with the
// workers). When every worker is busy (or holds a long-lived stream) grpc-go
// starts a goroutine as before.
//
// Per GOMAXPROCS, 8: handlers mostly wait on a backend, so the calls in
// flight follow the callers, not the CPUs. Measured (bench/compare -quick,
// interleaved, 2 vCPU, 2026-12-07), sidecar CPU per call at 16 callers,
// paired medians against no workers: 2 workers 0.91x (GetState) and
// 0.95x (in-memory); 16 workers 0.84x and 0.86x, and over 8 more pairs
// 0.84-0.95x on GetState and 0.81-0.99x on Invoke.
func streamWorkers() uint32 { return uint32(streamWorkersPerProc * runtime.GOMAXPROCS(0)) }

const streamWorkersPerProc = 8

// NewAppServer returns a gRPC server serving the app API; act (may be nil)
// counts its calls and streams in flight, gate (may be nil) its unary calls
// (so that a shared-memory call's backend reads stop polling while they run).
func NewAppServer(svc *service.Service, m *telemetry.Metrics, act *Activity, gate *busypoll.Gate, opts ...grpc.ServerOption) *grpc.Server {
	opts = append(opts,
		grpc.NumStreamWorkers(streamWorkers()),
		grpc.ChainUnaryInterceptor(unary(m, svc.MetricsApp, act, gate)),
		grpc.ChainStreamInterceptor(stream(m, svc.MetricsApp, act)),
		grpc.MaxRecvMsgSize(16<<20), grpc.MaxSendMsgSize(16<<20),
	)
	s := grpc.NewServer(opts...)
	runtimev1.RegisterRuntimeServer(s, svc)
	return s
}

// NewInternalServer returns a gRPC server serving sidecar-to-sidecar calls
// as unary CallLocal calls; act (may be nil) counts them in flight. The
// caller registers the Multiplex service on it too (RegisterMultiplex with
// transport/calls.Internal), which other sidecars use by default; gate
// (may be nil) counts the unary calls as NewAppServer's does.
func NewInternalServer(in *service.Internal, m *telemetry.Metrics, act *Activity, gate *busypoll.Gate) *grpc.Server {
	s := grpc.NewServer(grpc.NumStreamWorkers(streamWorkers()),
		grpc.ChainUnaryInterceptor(unary(m, func(string) string { return "" }, act, gate)), grpc.MaxRecvMsgSize(16<<20), grpc.MaxSendMsgSize(16<<20))
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

func unary(m *telemetry.Metrics, label func(string) string, act *Activity, gate *busypoll.Gate) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		act.begin()
		defer act.end()
		gate.Enter(false)
		defer gate.Leave(false)
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

func stream(m *telemetry.Metrics, label func(string) string, act *Activity) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if info.FullMethod != runtimev1.Multiplex_Calls_FullMethodName {
			act.begin() // a Multiplex stream counts per call (multiplex.go)
			defer act.end()
		}
		start := time.Now()
		app := appID(ss.Context())
		err := h(srv, &wrappedStream{ServerStream: ss, ctx: service.WithAppID(ss.Context(), app)})
		st, _ := edge.Status(err)
		// A Multiplex stream is a carrier: each call on it is counted by
		// transport/calls under its own method.
		if m != nil && info.FullMethod != runtimev1.Multiplex_Calls_FullMethodName {
			m.API(label(app), path.Base(info.FullMethod), "", st.Code().String(), time.Since(start))
		}
		if err != nil {
			return st.Err()
		}
		return nil
	}
}

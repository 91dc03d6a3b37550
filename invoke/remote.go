package invoke

import (
	"context"
	"errors"
	"fmt"
	"sync"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	"github.com/outrig/outrig/api/mux"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/balancer"
)

// Resolver returns the live endpoints of an app id. It answers NOT_FOUND
// (errkind.ErrNotFound) for an app id the control plane does not know.
type Resolver interface {
	Endpoints(ctx context.Context, appID string) ([]*configv1.Endpoint, error)
}

// Picker chooses the endpoint for one call, with the load-balancer config
// of the policy in force (nil: round robin), and learns its outcome through
// done. eps is never empty.
type Picker interface {
	Pick(appID string, cfg *balancer.Config, eps []*configv1.Endpoint, key string) (ep *configv1.Endpoint, done func(error))
}

// Remote calls apps on other sidecars through their Internal service. One
// gRPC connection per sidecar address is kept and reused; calls go on its
// Multiplex streams (api/mux, method mux.MethodCallLocal: one message each
// way instead of a unary call), or as unary CallLocal calls to a sidecar
// without the service. Safe for concurrent use; Close once at shutdown.
type Remote struct {
	resolver Resolver
	picker   Picker
	local    func(appID string) *Local // apps served by this sidecar (host mode): called directly

	mu    sync.Mutex
	conns map[string]*peer
}

// peer is the connection to one sidecar.
type peer struct {
	cc  *grpc.ClientConn
	mux *mux.Caller
}

// NewRemote returns the caller side of invocation.
func NewRemote(resolver Resolver, picker Picker, local func(appID string) *Local) *Remote {
	if picker == nil {
		picker = NewBalancers()
	}
	return &Remote{resolver: resolver, picker: picker, local: local, conns: map[string]*peer{}}
}

// Invoke calls req.AppId on behalf of caller; lb is the load-balancer
// config of the policy in force, or nil.
func (r *Remote) Invoke(ctx context.Context, caller string, req *runtimev1.InvokeRequest, lb *balancer.Config) (*runtimev1.InvokeResponse, error) {
	if req.AppId == "" {
		return nil, errkind.Required("app_id")
	}
	if req.Method == "" {
		return nil, errkind.Required("method")
	}
	if r.local != nil {
		if l := r.local(req.AppId); l != nil {
			return l.Call(ctx, caller, req)
		}
	}
	eps, err := r.resolver.Endpoints(ctx, req.AppId)
	if err != nil {
		return nil, fmt.Errorf("resolve app %q: %w", req.AppId, err)
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("app %q has no live instance: %w", req.AppId, errkind.ErrUnavailable)
	}
	key := req.HashKey
	if lb != nil && lb.HashKey != "" {
		if v, ok := req.Metadata[lb.HashKey]; ok {
			key = v
		}
	}
	ep, done := r.picker.Pick(req.AppId, lb, eps, key)
	resp, err := r.call(ctx, ep.GetAddress(), &runtimev1.InternalInvokeRequest{TargetAppId: req.AppId, CallerAppId: caller, Request: req})
	done(err)
	return resp, err
}

func (r *Remote) conn(addr string) (*peer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.conns[addr]; p != nil {
		return p, nil
	}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("sidecar %s: %w: %w", addr, errkind.ErrUnavailable, err)
	}
	p := &peer{cc: c, mux: mux.New(c)}
	r.conns[addr] = p
	return p, nil
}

func (r *Remote) call(ctx context.Context, addr string, req *runtimev1.InternalInvokeRequest) (*runtimev1.InvokeResponse, error) {
	p, err := r.conn(addr)
	if err != nil {
		return nil, err
	}
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: encode request: %w: %w", req.TargetAppId, errkind.ErrInvalidArgument, err)
	}
	out, err := p.mux.Call(ctx, mux.MethodCallLocal, b)
	if errors.Is(err, mux.ErrNotServed) {
		resp, err := runtimev1.NewInternalClient(p.cc).CallLocal(ctx, req)
		if err != nil {
			return nil, fromRemote(req.TargetAppId, addr, err)
		}
		return resp, nil
	}
	if err != nil {
		return nil, fromRemote(req.TargetAppId, addr, err)
	}
	resp := &runtimev1.InvokeResponse{}
	if err := proto.Unmarshal(out, resp); err != nil {
		return nil, fromRemote(req.TargetAppId, addr, status.Error(codes.Internal, "malformed answer: "+err.Error()))
	}
	return resp, nil
}

// fromRemote turns the callee sidecar's status back into a failure kind,
// keeping the status in the chain (governance classifies by it).
func fromRemote(app, addr string, err error) error {
	st, _ := status.FromError(err)
	var kind error
	switch st.Code() {
	case codes.InvalidArgument:
		kind = errkind.ErrInvalidArgument
	case codes.NotFound:
		kind = errkind.ErrNotFound
	case codes.Aborted:
		kind = errkind.ErrEtagMismatch
	case codes.ResourceExhausted:
		kind = errkind.ErrResourceExhausted
	case codes.DeadlineExceeded:
		kind = errkind.ErrDeadlineExceeded
	case codes.FailedPrecondition:
		kind = errkind.ErrUnsupported
	case codes.Canceled:
		return context.Canceled
	default:
		kind = errkind.ErrUnavailable
	}
	return &RemoteError{App: app, Addr: addr, Status: st, kind: kind}
}

// RemoteError is a failure answered by (or on the way to) a callee sidecar.
type RemoteError struct {
	App, Addr string
	Status    *status.Status
	kind      error
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("invoke %s at %s: %s", e.App, e.Addr, e.Status.Message())
}

// Unwrap exposes the failure kind.
func (e *RemoteError) Unwrap() error { return e.kind }

// GRPCStatus lets governance classify by code.
func (e *RemoteError) GRPCStatus() *status.Status { return e.Status }

// Close closes the sidecar connections.
func (r *Remote) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for a, p := range r.conns {
		p.mux.Close()
		errs = append(errs, p.cc.Close())
		delete(r.conns, a)
	}
	return errors.Join(errs...)
}

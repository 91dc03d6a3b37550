package invoke

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	"github.com/outrig/outrig/api/mux"
	apishm "github.com/outrig/outrig/api/shm"

	"github.com/outrig/outrig/errkind"
)

// fakePeer is another sidecar's internal listener: CallLocal as a unary
// method and, when withMux, on Multiplex streams (method mux.MethodCallLocal).
// Method "Missing" is answered NOT_FOUND; every other one echoes the data.
type fakePeer struct {
	runtimev1.UnimplementedInternalServer
	runtimev1.UnimplementedMultiplexServer
	addr            string
	unary, frames   atomic.Int32
	lastTimeoutUs   atomic.Int64
	lastCaller, app atomic.Value
}

func startPeer(t *testing.T, withMux bool) *fakePeer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &fakePeer{addr: l.Addr().String()}
	s := grpc.NewServer()
	runtimev1.RegisterInternalServer(s, p)
	if withMux {
		runtimev1.RegisterMultiplexServer(s, p)
	}
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return p
}

func (p *fakePeer) answer(req *runtimev1.InternalInvokeRequest) (*runtimev1.InvokeResponse, error) {
	p.lastCaller.Store(req.GetCallerAppId())
	p.app.Store(req.GetTargetAppId())
	if req.GetRequest().GetMethod() == "Missing" {
		return nil, status.Error(codes.NotFound, "no such order")
	}
	return &runtimev1.InvokeResponse{Data: req.GetRequest().GetData()}, nil
}

func (p *fakePeer) CallLocal(_ context.Context, req *runtimev1.InternalInvokeRequest) (*runtimev1.InvokeResponse, error) {
	p.unary.Add(1)
	return p.answer(req)
}

func (p *fakePeer) Calls(s runtimev1.Multiplex_CallsServer) error {
	for {
		f, err := s.Recv()
		if err != nil {
			return nil
		}
		p.frames.Add(1)
		p.lastTimeoutUs.Store(f.GetTimeoutUs())
		resp := &runtimev1.CallFrame{Id: f.GetId()}
		req := &runtimev1.InternalInvokeRequest{}
		if f.GetMethod() != mux.MethodCallLocal {
			resp.Status = apishm.EncodeStatus(status.Error(codes.Unimplemented, "method"))
		} else if err := proto.Unmarshal(f.GetPayload(), req); err != nil {
			resp.Status = apishm.EncodeStatus(status.Error(codes.InvalidArgument, err.Error()))
		} else if out, err := p.answer(req); err != nil {
			resp.Status = apishm.EncodeStatus(err)
		} else {
			resp.Payload, _ = proto.Marshal(out)
		}
		if err := s.Send(resp); err != nil {
			return err
		}
	}
}

type oneEndpoint string

func (a oneEndpoint) Endpoints(context.Context, string) ([]*configv1.Endpoint, error) {
	return []*configv1.Endpoint{{InstanceId: "i1", Address: string(a)}}, nil
}

// Calls to another sidecar go on its Multiplex streams, with the deadline
// in the frame and the callee's error statuses kept; a sidecar without the
// service gets unary calls.
func TestRemoteCallsPeersOnMultiplexStreams(t *testing.T) {
	for _, withMux := range []bool{true, false} {
		p := startPeer(t, withMux)
		r := NewRemote(oneEndpoint(p.addr), nil, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		for range 3 {
			resp, err := r.Invoke(ctx, "checkout", &runtimev1.InvokeRequest{AppId: "orders", Method: "Echo", Data: []byte("hi")}, nil)
			if err != nil || string(resp.GetData()) != "hi" {
				t.Fatalf("mux %v: Invoke: %v, %q", withMux, err, resp.GetData())
			}
		}
		_, err := r.Invoke(ctx, "checkout", &runtimev1.InvokeRequest{AppId: "orders", Method: "Missing"}, nil)
		var re *RemoteError
		if !errors.Is(err, errkind.ErrNotFound) || !errors.As(err, &re) || re.Status.Code() != codes.NotFound || re.Status.Message() != "no such order" {
			t.Errorf("mux %v: Missing: %v, want the callee's NOT_FOUND", withMux, err)
		}
		cancel()
		if withMux {
			if p.frames.Load() != 4 || p.unary.Load() != 0 {
				t.Errorf("with Multiplex: %d frames, %d unary calls; want 4 and 0", p.frames.Load(), p.unary.Load())
			}
			if us := p.lastTimeoutUs.Load(); us <= 0 || us > 5_000_000 {
				t.Errorf("frame timeout %d µs, want the caller's remaining deadline (≤ 5 s)", us)
			}
		} else if p.unary.Load() != 4 {
			t.Errorf("without Multiplex: %d unary calls, want 4", p.unary.Load())
		}
		if p.lastCaller.Load() != "checkout" || p.app.Load() != "orders" {
			t.Errorf("caller %v, target %v", p.lastCaller.Load(), p.app.Load())
		}
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}
}

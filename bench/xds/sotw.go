package main

// The state-of-the-world baseline.
//
// The control plane serves only delta xDS, so the baseline is a minimal SotW
// server inside the same control-plane process (a controlplane.Service on
// the same gRPC server, so the same transport, port and process): it follows
// the control plane's own delta server over one loopback stream (wildcard on
// every type, including endpoints) and serves
// /outrig.bench.v1.SotwDiscovery/Stream, a bidi stream of the standard
// envoy DiscoveryRequest / DiscoveryResponse messages. On every change of a
// type it resends, to every stream concerned, the full set of that type the
// stream subscribes to (all resources for the wildcard configuration types,
// every resource of the requested app ids for endpoints) — what a SotW
// server must do. Fairness:
//   - the change reaches the hub through exactly the delta path it
//     measures against (file watch or registry → xds/server), plus one
//     in-process loopback hop, which adds to the baseline's latency;
//   - like the delta server it sends a type again on a stream only after the
//     previous response of that type was ACKed, and coalesces changes
//     meanwhile;
//   - resources are encoded once (the Any values received from upstream are
//     shared) and each full set is built once per version and subscription,
//     shared by every stream with that subscription; each send marshals the
//     response, as go-control-plane does for delta.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
)

const (
	sotwService = "outrig.bench.v1.SotwDiscovery"
	sotwMethod  = "/" + sotwService + "/Stream"
)

var sotwDesc = grpc.ServiceDesc{
	ServiceName: sotwService,
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		Handler:       func(srv any, ss grpc.ServerStream) error { return srv.(*sotwHub).serve(ss) },
		ServerStreams: true,
		ClientStreams: true,
	}},
	Metadata: "bench/xds/sotw.go",
}

// sotwHub is the SotW baseline server. Register and Close make it a
// controlplane.Service; follow feeds it.
type sotwHub struct {
	model endpointModel
	log   *slog.Logger

	ready     chan struct{} // closed once every type was received from upstream
	closed    chan struct{}
	closeOnce sync.Once

	mu      sync.Mutex
	sets    [4]*typeSet
	streams map[*sotwStream]struct{}
}

// typeSet is the hub's copy of one type.
type typeSet struct {
	typeURL string
	version uint64
	res     map[string]*anypb.Any
	lists   map[string][]*anypb.Any // subscription key → full set at version
}

func newSotwHub(model endpointModel, log *slog.Logger) *sotwHub {
	h := &sotwHub{model: model, log: log, ready: make(chan struct{}), closed: make(chan struct{}), streams: map[*sotwStream]struct{}{}}
	for _, t := range simTypes(model) {
		h.sets[typeIndex(t)] = &typeSet{typeURL: t, res: map[string]*anypb.Any{}, lists: map[string][]*anypb.Any{}}
	}
	return h
}

func (h *sotwHub) Register(g grpc.ServiceRegistrar) { g.RegisterService(&sotwDesc, h) }

func (h *sotwHub) Close() error {
	h.closeOnce.Do(func() { close(h.closed) })
	return nil
}

// follow subscribes to everything on the control plane at addr and applies
// what arrives, until ctx ends.
func (h *sotwHub) follow(ctx context.Context, addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return fmt.Errorf("sotw hub: dial %s: %w", addr, err)
	}
	defer conn.Close()
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		return fmt.Errorf("sotw hub: open stream: %w", err)
	}
	for i, t := range simTypes(h.model) {
		req := &discovery.DeltaDiscoveryRequest{TypeUrl: t, ResourceNamesSubscribe: []string{"*"}}
		if i == 0 {
			req.Node = &core.Node{Id: "sotw-hub"} // no app ids: sees every resource
		}
		if err := st.Send(req); err != nil {
			return fmt.Errorf("sotw hub: subscribe %s: %w", t, err)
		}
	}
	var seen [4]bool
	for {
		resp, err := st.Recv()
		if err != nil {
			select {
			case <-h.closed: // the control plane is stopping
				return nil
			default:
			}
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sotw hub: upstream: %w", err)
		}
		i := typeIndex(resp.GetTypeUrl())
		h.apply(i, resp.GetResources(), resp.GetRemovedResources())
		if err := st.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}); err != nil {
			return fmt.Errorf("sotw hub: ack: %w", err)
		}
		if !seen[i] {
			seen[i] = true
			if seen == [4]bool{true, true, true, true} {
				close(h.ready)
			}
		}
	}
}

// apply records a delta from upstream and marks every stream concerned.
func (h *sotwHub) apply(i int, updated []*discovery.Resource, removed []string) {
	changed := make([]string, 0, len(updated)+len(removed))
	h.mu.Lock()
	ts := h.sets[i]
	for _, r := range updated {
		ts.res[r.GetName()] = r.GetResource()
		changed = append(changed, r.GetName())
	}
	for _, name := range removed {
		if _, ok := ts.res[name]; ok {
			delete(ts.res, name)
			changed = append(changed, name)
		}
	}
	ts.version++
	clear(ts.lists)
	streams := make([]*sotwStream, 0, len(h.streams))
	for s := range h.streams {
		streams = append(streams, s)
	}
	h.mu.Unlock()
	if len(changed) == 0 {
		return
	}
	for _, s := range streams {
		if s.concerned(i, changed, h.model) {
			s.markDirty(i)
		}
	}
}

// full returns the response carrying the whole set of type i that sub
// subscribes to.
func (h *sotwHub) full(i int, sub *sotwSub) *discovery.DiscoveryResponse {
	h.mu.Lock()
	defer h.mu.Unlock()
	ts := h.sets[i]
	list, ok := ts.lists[sub.key]
	if !ok {
		names := make([]string, 0, len(ts.res))
		for name := range ts.res {
			if sub.covers(name, h.model) {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		list = make([]*anypb.Any, len(names))
		for k, name := range names {
			list[k] = ts.res[name]
		}
		ts.lists[sub.key] = list
	}
	return &discovery.DiscoveryResponse{VersionInfo: strconv.FormatUint(ts.version, 10), TypeUrl: ts.typeURL, Resources: list}
}

// sotwSub is a stream's subscription to one type: wildcard or names.
type sotwSub struct {
	wildcard bool
	names    []string
	key      string
}

func newSotwSub(names []string) *sotwSub {
	if len(names) == 0 || (len(names) == 1 && names[0] == "*") {
		return &sotwSub{wildcard: true, key: "*"}
	}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	return &sotwSub{names: sorted, key: strings.Join(sorted, "\x00")}
}

func (s *sotwSub) covers(name string, m endpointModel) bool {
	if s.wildcard {
		return true
	}
	for _, sub := range s.names {
		if m.Matches(sub, name) {
			return true
		}
	}
	return false
}

// sotwStream is one client stream. subs and dirty are shared with apply;
// everything else belongs to serve.
type sotwStream struct {
	subs  [4]atomic.Pointer[sotwSub]
	dirty atomic.Uint32 // bit i: type i changed since last looked at
	kick  chan struct{} // capacity 1
}

func (s *sotwStream) concerned(i int, changed []string, m endpointModel) bool {
	sub := s.subs[i].Load()
	if sub == nil {
		return false
	}
	for _, name := range changed {
		if sub.covers(name, m) {
			return true
		}
	}
	return false
}

func (s *sotwStream) markDirty(i int) {
	for {
		old := s.dirty.Load()
		if s.dirty.CompareAndSwap(old, old|1<<i) {
			break
		}
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// serve runs one SotW stream: it answers every new subscription with the
// full set, and after each ACK sends the full set again if the type changed
// meanwhile.
func (h *sotwHub) serve(ss grpc.ServerStream) error {
	ctx := ss.Context()
	select {
	case <-h.ready:
	case <-ctx.Done():
		return ctx.Err()
	case <-h.closed:
		return nil
	}
	s := &sotwStream{kick: make(chan struct{}, 1)}
	h.mu.Lock()
	h.streams[s] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.streams, s)
		h.mu.Unlock()
	}()

	reqs := make(chan *discovery.DiscoveryRequest, 4)
	errc := make(chan error, 1)
	go func() {
		for {
			req := &discovery.DiscoveryRequest{}
			if err := ss.RecvMsg(req); err != nil {
				errc <- err
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			}
		}
	}()

	var (
		awaiting [4]bool
		pending  uint32
		nonce    uint64
	)
	for {
		select {
		case req := <-reqs:
			i := typeIndex(req.GetTypeUrl())
			if req.GetTypeUrl() != h.sets[i].typeURL {
				continue // not a type the baseline serves
			}
			sub := newSotwSub(req.GetResourceNames())
			if old := s.subs[i].Load(); old == nil || old.key != sub.key {
				s.subs[i].Store(sub)
				pending |= 1 << i
			}
			awaiting[i] = false // an ACK, a NACK or a new subscription
		case <-s.kick:
			pending |= s.dirty.Swap(0)
		case err := <-errc:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-h.closed:
			return nil
		}
		for i := range awaiting {
			sub := s.subs[i].Load()
			if pending&(1<<i) == 0 || awaiting[i] || sub == nil {
				continue
			}
			resp := h.full(i, sub)
			nonce++
			resp.Nonce = strconv.FormatUint(nonce, 10)
			if err := ss.SendMsg(resp); err != nil {
				return err
			}
			awaiting[i] = true
			pending &^= 1 << i
		}
	}
}

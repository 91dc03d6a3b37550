// Package server is the control plane's delta-xDS server: it serves Outrig's
// four resource types (package resource) on
// envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources,
// using go-control-plane v0.14.0's delta server for the protocol state
// machine (nonces, subscriptions, returned versions per stream).
//
// # Why not LinearCache
//
// go-control-plane's LinearCache per type behind a MuxCache serves opaque
// types, but for Outrig it falls short in three ways, so each type URL is
// served by a small ConfigWatcher of our own (typeCache) behind the same
// MuxCache:
//
//   - Scope filtering is per node. A wrapper that filters LinearCache's
//     responses cannot fix its returned-version bookkeeping (the stream would
//     believe the client holds the filtered-out resources) and cannot turn "a
//     scope change hides this resource from this node" into a removal. One
//     LinearCache per distinct app-id set would be correct but copies every
//     resource per set and still lacks the next two points. typeCache filters
//     inside the diff of each watch, so hidden resources are never recorded
//     as sent and become removals when a scope change hides them.
//   - LinearCache never answers a subscription to a name it does not hold;
//     typeCache answers it at once in removed_resources (and remembers, in
//     the stream's version map, that it did), then pushes the resource when
//     it appears. Sidecars resolve unknown app ids in well under 100 ms.
//   - LinearCache sends to the stream's channel while holding its lock. The
//     channel has 2×10 slots and each stream has one watch per type, so with
//     our four types the send cannot fill it today, but a send that blocks
//     would stall every writer and every other stream of that type (and with
//     ten or more types on one stream it does deadlock). typeCache computes
//     responses under its lock and hands them over after releasing it,
//     without blocking: if a stream's channel is full the send waits in a
//     goroutine owned by the watch, which the watch's cancel joins.
//
// Versions are content hashes (resource.Version), so replicas agree and a
// client that reconnects with initial_resource_versions gets only real
// differences. SetResources and UpdateResources diff by version and notify
// only the watches concerned by the names that changed.
//
// Only delta ADS is served; state-of-the-world streams are refused. Keep
// fewer than ten types on one ADS stream (go-control-plane's per-stream
// buffer is sized for them); we serve four.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverconfig "github.com/envoyproxy/go-control-plane/pkg/server/config"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/outrig/outrig/xds/resource"
)

// Options configure a Server.
type Options struct {
	// Metrics is where the server registers its metrics
	// (outrig_xds_nacks_total{node,type}, outrig_xds_resources_sent_total{type},
	// ...). Nil: metrics are kept but not exported.
	Metrics prometheus.Registerer
	// Logger receives NACKs and stream events. Nil: slog.Default().
	Logger *slog.Logger
}

// Server holds the desired resources of every type and serves them to
// delta-xDS streams.
//
// Lifecycle: New, then Register on a grpc.Server (before it serves), then
// SetResources/UpdateResources at any time, from any goroutine; Close ends
// every open stream (call it before grpc.Server.GracefulStop, which would
// otherwise wait for the long-lived streams).
//
// Concurrency: all methods are safe for concurrent use. Writers never block
// on a client.
type Server struct {
	log     *slog.Logger
	metrics *metrics
	caches  map[string]*typeCache
	xds     serverv3.Server
	cancel  context.CancelFunc

	holdMu     sync.Mutex
	holdTimers []*time.Timer // stopped by Close
}

// New builds a Server with no resources.
func New(opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	m, err := newMetrics(opts.Metrics)
	if err != nil {
		return nil, err
	}
	s := &Server{log: log, metrics: m, caches: map[string]*typeCache{}}
	mux := &cache.MuxCache{
		Classify:      func(r *cache.Request) string { return r.GetTypeUrl() },
		ClassifyDelta: func(r *cache.DeltaRequest) string { return r.GetTypeUrl() },
		Caches:        map[string]cache.Cache{},
	}
	ids := newStreamIDs()
	for _, t := range resource.AllTypes() {
		c := newTypeCache(t, m.deferredSends.Inc, ids)
		s.caches[t] = c
		mux.Caches[t] = c
	}
	closed := func(id int64) {
		ids.drop(id)
		for _, c := range s.caches {
			c.forget(id)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	// Legacy wildcard (an empty first request means "everything") is off:
	// a sidecar subscribes to "*" explicitly, and an on-demand type must
	// never turn into "all endpoints" by accident.
	s.xds = serverv3.NewServer(ctx, mux, newCallbacks(log, m, ids, closed), serverconfig.DeactivateLegacyWildcard())
	return s, nil
}

// Register registers the ADS service on g.
func (s *Server) Register(g *grpc.Server) {
	discovery.RegisterAggregatedDiscoveryServiceServer(g, s.xds)
}

// Close ends every open stream; clients see the stream end and reconnect
// elsewhere. Resources stay readable. Safe to call more than once.
func (s *Server) Close() {
	s.cancel()
	s.holdMu.Lock()
	for _, t := range s.holdTimers {
		t.Stop()
	}
	s.holdMu.Unlock()
}

// SetResources makes resources (name → message) the full desired set of
// typeURL. Resources whose content did not change are not sent again; only
// added or changed resources and the names of removed ones travel, and only
// to the streams that see them. It validates everything first and changes
// nothing on error.
func (s *Server) SetResources(typeURL string, resources map[string]proto.Message) error {
	c, err := s.cacheOf(typeURL)
	if err != nil {
		return err
	}
	entries, err := encodeAll(typeURL, resources)
	if err != nil {
		return err
	}
	c.replace(entries)
	return nil
}

// UpdateResources changes part of typeURL's set: upserts (name → message)
// and removals by name; other resources stay. Unchanged upserts and
// removals of absent names send nothing. Validation as for SetResources.
func (s *Server) UpdateResources(typeURL string, upserts map[string]proto.Message, removed []string) error {
	c, err := s.cacheOf(typeURL)
	if err != nil {
		return err
	}
	entries, err := encodeAll(typeURL, upserts)
	if err != nil {
		return err
	}
	c.patch(entries, removed)
	return nil
}

// HoldRemovals keeps, for d, the resources of typeURL that reconnecting
// clients hold but the server does not have: it neither sends their removal
// nor forgets them; when d has passed, the removals still due are sent. Names
// a client does not hold are answered at once as usual.
//
// A restarted control plane starts with an empty registry: without a hold,
// every reconnecting sidecar would be told that every app id it calls has
// no endpoints, until the instances re-register (within a third of their
// lease). Call it before serving, with about one lease TTL.
func (s *Server) HoldRemovals(typeURL string, d time.Duration) error {
	c, err := s.cacheOf(typeURL)
	if err != nil {
		return err
	}
	c.hold()
	s.holdMu.Lock()
	s.holdTimers = append(s.holdTimers, time.AfterFunc(d, c.release))
	s.holdMu.Unlock()
	return nil
}

// Resource returns the message served as typeURL/name and its version.
func (s *Server) Resource(typeURL, name string) (msg proto.Message, version string, ok bool) {
	c, err := s.cacheOf(typeURL)
	if err != nil {
		return nil, "", false
	}
	e, ok := c.current(name)
	if !ok {
		return nil, "", false
	}
	m, err := resource.Decode(e.resource.GetResource())
	if err != nil {
		return nil, "", false
	}
	return m, e.version, true
}

func (s *Server) cacheOf(typeURL string) (*typeCache, error) {
	c, ok := s.caches[typeURL]
	if !ok {
		return nil, fmt.Errorf("type url %q: %w", typeURL, resource.ErrUnknownType)
	}
	return c, nil
}

// encodeAll validates and encodes resources of one type.
func encodeAll(typeURL string, resources map[string]proto.Message) (map[string]*entry, error) {
	out := make(map[string]*entry, len(resources))
	for name, m := range resources {
		if name == "" {
			return nil, fmt.Errorf("%s: resource name is empty", typeURL)
		}
		if m == nil {
			return nil, fmt.Errorf("%s %q: resource is nil", typeURL, name)
		}
		got, err := resource.TypeURL(m)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", typeURL, name, err)
		}
		if got != typeURL {
			return nil, fmt.Errorf("%s %q: message is a %s", typeURL, name, got)
		}
		if rn := resource.Name(m); rn != name {
			return nil, fmt.Errorf("%s %q: message names itself %q", typeURL, name, rn)
		}
		a, err := resource.Encode(m)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", typeURL, name, err)
		}
		v := resource.VersionOf(a.GetValue())
		out[name] = &entry{
			version:  v,
			resource: &discovery.Resource{Name: name, Version: v, Resource: a},
			scopes:   append([]string(nil), resource.Scopes(m)...),
		}
	}
	return out, nil
}

// Package client is the sidecar's delta-xDS client for Outrig's control
// plane, with the semantics of gRPC-go's xDS client:
//
//   - one ADS stream (DeltaAggregatedResources); Component, Policy and
//     Subscription subscribed by wildcard, the Endpoints of an app id on
//     demand as the collection "<app id>/*" (Endpoints; generic names and
//     collections with Watch, Get);
//   - a per-app view of the endpoints held, updated as each response is
//     applied, so that resolving an app id costs a map lookup (Endpoints,
//     CachedEndpoints);
//   - several control-plane addresses (Options.Targets): the connection
//     picks the first that answers and, when it is lost, tries them again
//     in order (gRPC pick_first), and the stream resumes on whichever
//     replica answers;
//   - a per-resource cache with the version of every accepted resource;
//   - each response's changes handed to a Handler, serially; resources the
//     client cannot decode or the Handler rejects are NACKed with
//     error_detail naming each of them, while the response's other resources
//     are accepted (their versions recorded) — a rejected resource keeps its
//     previous version;
//   - a not-found timer per named subscription (NotFoundTimeout, default 2s)
//     started when the subscription is sent, as a fallback for servers that
//     do not answer unknown names in removed_resources (ours does, at once);
//   - reconnection with exponential backoff and jitter, re-subscribing
//     everything with initial_resource_versions, so that a server holding the
//     same versions sends nothing again;
//   - the last accepted resources persisted atomically to a file (at once
//     after a configuration change, within PersistDelay after endpoint
//     changes), loaded and handed to the Handler when the control plane
//     cannot be reached at start.
//
// The package also provides Registrar, which keeps the leases of the apps a
// sidecar serves alive in the control plane's registry.
package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/protobuf/proto"

	"github.com/outrig/outrig/xds/resource"
)

// Handler receives accepted changes, serially (never concurrently), in stream order.
//
// Apply is called from the client's own goroutine. It may call the
// client's non-blocking methods (Watch, Cached, Stats) but must not wait on
// it (Get, Wait): the client does not process anything else until Apply
// returns.
type Handler interface {
	// Apply validates and applies one response's changes for one type. It returns an error per
	// resource name it rejects; the client NACKs the response with those errors in error_detail
	// while the other resources of the response stay accepted (their versions are recorded).
	Apply(typeURL string, updated map[string]proto.Message, removed []string) map[string]error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(typeURL string, updated map[string]proto.Message, removed []string) map[string]error

// Apply calls f.
func (f HandlerFunc) Apply(typeURL string, updated map[string]proto.Message, removed []string) map[string]error {
	return f(typeURL, updated, removed)
}

// Options configure a Client. Target (or Targets), NodeID and Handler are
// required.
type Options struct {
	// Target is the control plane's gRPC address (host:port or any gRPC
	// target string), or several host:port addresses separated by commas
	// (replicas of one control plane), as Targets.
	Target string
	// Targets are the addresses of a replicated control plane's replicas:
	// the client connects to the first that answers and fails over to the
	// others, in order, when the connection is lost. Target is ignored when
	// Targets is set.
	Targets []string
	// DialOptions replace the default (plaintext) transport credentials;
	// the client adds its reconnect backoff parameters.
	DialOptions []grpc.DialOption
	// NodeID identifies this sidecar instance (xDS node id); Cluster is
	// informative.
	NodeID  string
	Cluster string
	// AppIDs are the apps this sidecar serves, sent in the node metadata
	// (app_ids): the control plane sends scoped resources accordingly. Empty:
	// the node receives every resource.
	AppIDs []string
	// Handler receives every accepted change.
	Handler Handler
	// PersistPath is the file holding the last accepted resources. Empty:
	// nothing is persisted.
	PersistPath string
	// InitialTimeout: when no configuration arrived from the control plane
	// this long after New, the persisted file is loaded. Default 1s.
	InitialTimeout time.Duration
	// NotFoundTimeout: a named subscription without an answer this long
	// after it was sent is taken as not found. Default 2s.
	NotFoundTimeout time.Duration
	// PersistDelay: after a change of named resources only (endpoints),
	// the persisted file is rewritten within this delay, so that a burst of
	// endpoint changes costs one write. Configuration changes are written
	// at once. Default 1s.
	PersistDelay time.Duration
	// BackoffBase and BackoffMax bound the delay between connection
	// attempts (exponential, factor 1.6, ±20% jitter). Defaults 100ms, 30s.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Logger; nil: slog.Default().
	Logger *slog.Logger
}

func (o *Options) validate() error {
	if len(o.Targets) == 0 {
		for _, t := range strings.Split(o.Target, ",") {
			if t = strings.TrimSpace(t); t != "" {
				o.Targets = append(o.Targets, t)
			}
		}
	}
	for i, t := range o.Targets {
		if strings.TrimSpace(t) == "" {
			return fmt.Errorf("client options: Targets[%d] is empty", i)
		}
	}
	switch {
	case len(o.Targets) == 0:
		return errors.New("client options: Target is required")
	case o.NodeID == "":
		return errors.New("client options: NodeID is required")
	case o.Handler == nil:
		return errors.New("client options: Handler is required")
	}
	if o.InitialTimeout <= 0 {
		o.InitialTimeout = time.Second
	}
	if o.NotFoundTimeout <= 0 {
		o.NotFoundTimeout = 2 * time.Second
	}
	if o.PersistDelay <= 0 {
		o.PersistDelay = time.Second
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = 100 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 30 * time.Second
	}
	if o.BackoffMax < o.BackoffBase {
		o.BackoffMax = o.BackoffBase
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// ErrClosed is returned by methods called after Close.
var ErrClosed = errors.New("xds client closed")

// Stats are counters of what the client received and sent.
type Stats struct {
	Streams   int // streams opened
	Responses int // responses received
	Resources int // resources received (before any dedup or rejection)
	Removed   int // names received in removed_resources
	Applied   int // resources handed to the Handler as updated
	Nacks     int // responses NACKed
	Bytes     int // encoded size of the responses received
}

// Client is a delta-xDS client. Create it with New; it connects and
// reconnects on its own until Close.
//
// Concurrency: all methods are safe for concurrent use. The Handler is
// called from one internal goroutine.
type Client struct {
	opts Options
	log  *slog.Logger
	conn *grpc.ClientConn
	ads  discovery.AggregatedDiscoveryServiceClient
	node *core.Node

	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{} // closed when run returns
	streams  sync.WaitGroup
	events   chan event
	kick     chan struct{} // a Watch added names; capacity 1
	ready    chan struct{}
	isReady  bool // only touched by run
	closeErr sync.Once

	mu           sync.Mutex
	types        map[string]*typeState
	stats        Stats
	persistTimer *time.Timer // pending delayed persist; guarded by mu

	persistMu sync.Mutex // serialises writes of the persisted file
	endpoints endpointView
}

// New creates the client and starts connecting to opts.Target.
func New(opts Options) (*Client, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	dial := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	dial = append(dial, opts.DialOptions...)
	target := opts.Targets[0]
	if len(opts.Targets) > 1 {
		// A resolver of our own (not registered globally) lists every
		// replica; pick_first connects to the first that answers and, after
		// losing it, tries the list again in order.
		r := manual.NewBuilderWithScheme("outrig-cp")
		addrs := make([]resolver.Address, len(opts.Targets))
		for i, t := range opts.Targets {
			addrs[i] = resolver.Address{Addr: t}
		}
		r.InitialState(resolver.State{Addresses: addrs})
		dial = append(dial, grpc.WithResolvers(r), grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"pick_first":{}}]}`))
		target = r.Scheme() + ":///control-plane"
	}
	dial = append(dial,
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: opts.BackoffBase, Multiplier: 1.6, Jitter: 0.2, MaxDelay: opts.BackoffMax},
			MinConnectTimeout: 5 * time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)),
		// Detect a control plane that vanished without closing the
		// connection (the server permits pings every 10s).
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
	)
	conn, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, fmt.Errorf("xds client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		opts:   opts,
		log:    opts.Logger.With("component", "xds-client"),
		conn:   conn,
		ads:    discovery.NewAggregatedDiscoveryServiceClient(conn),
		node:   &core.Node{Id: opts.NodeID, Cluster: opts.Cluster, Metadata: resource.NodeMetadata(opts.AppIDs)},
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
		events: make(chan event, 16),
		kick:   make(chan struct{}, 1),
		ready:  make(chan struct{}),
		types:  map[string]*typeState{},
	}
	for _, t := range resource.AllTypes() {
		c.types[t] = newTypeState(t, slices.Contains(resource.WildcardTypes(), t))
	}
	go c.run()
	return c, nil
}

// Ready is closed once the first configuration was applied: every wildcard
// type answered by the control plane, or the persisted file loaded.
func (c *Client) Ready() <-chan struct{} { return c.ready }

// Conn returns the client's gRPC connection to the control plane, for other
// services on the same server (the Registrar). It is closed by Close.
func (c *Client) Conn() grpc.ClientConnInterface { return c.conn }

// Close stops the client: it ends the stream, waits for its goroutines,
// writes a pending delayed persist and closes the connection. The Handler
// is not called after Close returns.
func (c *Client) Close() error {
	var err error
	c.closeErr.Do(func() {
		c.cancel()
		<-c.done
		c.streams.Wait()
		c.mu.Lock()
		for _, ts := range c.types {
			ts.stopTimers()
		}
		pending := c.persistTimer != nil && c.persistTimer.Stop()
		c.persistTimer = nil
		c.mu.Unlock()
		if pending {
			c.persist()
		}
		err = c.conn.Close()
	})
	return err
}

// Stats returns a copy of the client's counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Watch subscribes to typeURL/name, a resource name or a collection
// ("<prefix>/*": every resource whose name starts with prefix/). For a
// wildcard type it does nothing (everything is subscribed already). It does
// not wait; use Get to wait for the answer.
func (c *Client) Watch(typeURL, name string) error {
	if name == "" {
		return errors.New("watch: name is empty")
	}
	c.mu.Lock()
	ts, ok := c.types[typeURL]
	if !ok {
		c.mu.Unlock()
		return fmt.Errorf("watch %q: %w", typeURL, resource.ErrUnknownType)
	}
	added := ts.watch(name)
	c.mu.Unlock()
	if added {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// Cached returns the accepted resource typeURL/name, if the client holds it.
func (c *Client) Cached(typeURL, name string) (proto.Message, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts, ok := c.types[typeURL]
	if !ok {
		return nil, false
	}
	h, ok := ts.held[name]
	if !ok {
		return nil, false
	}
	return h.msg, true
}

// Get subscribes to typeURL/name if needed (see Watch) and waits until the
// client knows whether it exists: it returns (msg, true, nil) for a resource
// it holds, (nil, false, nil) when the control plane said it does not exist
// or the not-found timer fired, and an error when ctx ends or the client is
// closed. For wildcard types it waits for the type's first answer.
// The returned message is shared: do not modify it.
func (c *Client) Get(ctx context.Context, typeURL, name string) (proto.Message, bool, error) {
	if err := c.Watch(typeURL, name); err != nil {
		return nil, false, err
	}
	return c.Wait(ctx, typeURL, name)
}

// Wait is Get without subscribing: it waits for an answer about a name
// already watched (or a wildcard type's first answer). For a collection
// name ("<prefix>/*") it returns a nil message and whether the client
// holds at least one member.
func (c *Client) Wait(ctx context.Context, typeURL, name string) (proto.Message, bool, error) {
	c.mu.Lock()
	ts, ok := c.types[typeURL]
	if !ok {
		c.mu.Unlock()
		return nil, false, fmt.Errorf("wait %q: %w", typeURL, resource.ErrUnknownType)
	}
	resolved := ts.resolvedChan(name)
	c.mu.Unlock()
	if resolved == nil {
		return nil, false, fmt.Errorf("wait %s %q: not watched", typeURL, name)
	}
	select {
	case <-resolved:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	case <-c.done:
		return nil, false, ErrClosed
	}
	if resource.IsCollection(name) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return nil, ts.has(name), nil
	}
	m, found := c.Cached(typeURL, name)
	return m, found, nil
}

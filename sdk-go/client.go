package outrig

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
)

// Client talks to one sidecar. It holds one connection that all calls and
// streams share; create one Client per process (or per sidecar) and reuse it.
// All methods are safe for concurrent use. Close releases the connection;
// calls made after Close fail (with a CANCELED status over gRPC).
type Client struct {
	t       transport
	appID   string
	address string
	timeout time.Duration

	closeOnce sync.Once
	closeErr  error
}

// Option configures NewClient.
type Option func(*clientConfig)

type clientConfig struct {
	address     string
	hasAddress  bool
	appID       string
	hasAppID    bool
	dialOptions []grpc.DialOption
	timeout     time.Duration
	shm         bool
	shmPath     string
	busyPoll    time.Duration
	hasBusyPoll bool
	unary       bool // WithUnaryRPC
}

// WithAddress sets the sidecar address (see NewClient for the forms).
// It takes precedence over OUTRIG_ADDRESS.
func WithAddress(addr string) Option {
	return func(c *clientConfig) { c.address, c.hasAddress = addr, true }
}

// WithAppID names the calling application. When set (here or through
// OUTRIG_APP_ID) every call carries the outrig-app-id metadata header, which
// a sidecar serving several apps (host mode) needs to know who calls. An
// empty id sends no header.
func WithAppID(id string) Option {
	return func(c *clientConfig) { c.appID, c.hasAppID = id, true }
}

// WithDialOptions adds gRPC dial options, applied after the SDK's defaults
// (insecure transport credentials), so they can override them.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *clientConfig) { c.dialOptions = append(c.dialOptions, opts...) }
}

// WithTimeout sets the default per-call timeout of unary calls whose context
// has no deadline. Zero (the default) means no timeout beyond the context.
// It does not apply to the streams of Subscribe, SubscribeBinding and Serve.
func WithTimeout(d time.Duration) Option {
	return func(c *clientConfig) { c.timeout = d }
}

// NewClient creates a Client for the sidecar at the address given by
// WithAddress, else the OUTRIG_ADDRESS environment variable, else
// DefaultAddress (unix:///tmp/outrig.sock). Accepted address forms:
// unix:///abs/path, unix:relative/path, /abs/path, unix-abstract:name,
// host:port, dns:///host:port and passthrough:///host:port.
//
// NewClient does not wait for the sidecar: the connection is made in the
// background and a call made while the sidecar is unreachable fails fast
// with ErrUnavailable. ctx is reserved for future transports that need a
// handshake; it is not retained.
func NewClient(ctx context.Context, opts ...Option) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("outrig: new client: %w", err)
	}
	var cfg clientConfig
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("outrig: new client: nil Option: %w", ErrInvalidArgument)
		}
		o(&cfg)
	}
	if !cfg.hasAddress {
		if v, ok := os.LookupEnv(EnvAddress); ok && v != "" {
			cfg.address = v
		} else {
			cfg.address = DefaultAddress
		}
	}
	if !cfg.hasAppID {
		cfg.appID = os.Getenv(EnvAppID)
	}
	if cfg.timeout < 0 {
		return nil, fmt.Errorf("outrig: new client: timeout %v is negative: %w", cfg.timeout, ErrInvalidArgument)
	}
	if cfg.busyPoll < 0 {
		return nil, fmt.Errorf("outrig: new client: WithBusyPoll(%v) is negative (0 turns polling off): %w", cfg.busyPoll, ErrInvalidArgument)
	}
	if !cfg.hasBusyPoll {
		cfg.busyPoll = DefaultBusyPoll
	}
	target, err := parseAddress(cfg.address)
	if err != nil {
		return nil, err
	}
	g, err := newGRPCTransport(target, cfg.appID, cfg.dialOptions)
	if err != nil {
		return nil, err
	}
	var c idCaller
	switch {
	case cfg.shm:
		t, err := newShmTransport(cfg.address, cfg.shmPath, cfg.appID, cfg.busyPoll)
		if err != nil {
			g.close()
			return nil, err
		}
		c = t
	case cfg.unary:
		return newClientWithTransport(g, cfg), nil
	default:
		c = newMuxCaller(g)
	}
	return newClientWithTransport(&byIDTransport{grpcTransport: g, c: c}, cfg), nil
}

func newClientWithTransport(t transport, cfg clientConfig) *Client {
	return &Client{t: t, appID: cfg.appID, address: cfg.address, timeout: cfg.timeout}
}

// Address is the sidecar address in use, as given (before normalisation).
func (c *Client) Address() string { return c.address }

// AppID is the app id sent in the outrig-app-id header ("" when none).
func (c *Client) AppID() string { return c.appID }

// Close closes the connection to the sidecar. Running Subscribe, Serve and
// SubscribeBinding loops end with an error. Close is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.t.close() })
	return c.closeErr
}

// callCtx applies the default per-call timeout to ctx when it has no
// deadline. The returned cancel must be called.
func (c *Client) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout > 0 {
		if _, ok := ctx.Deadline(); !ok {
			return context.WithTimeout(ctx, c.timeout)
		}
	}
	return ctx, noCancel
}

func noCancel() {}

package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/dapr/components-contrib/metadata"
	"github.com/dapr/components-contrib/pubsub"
	"github.com/dapr/kit/logger"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/outrig/outrig/api/gen/outrig/broker/v1"
	"github.com/outrig/outrig/errkind"
)

// Metadata keys of the pub/sub component.
const (
	// MetadataBrokerAddress is host:port of the control plane serving the
	// broker. Required.
	MetadataBrokerAddress = "brokerAddress"
	// MetadataConsumerID is the consumer group the component's
	// subscriptions join (the sidecar defaults it to the app id). Required
	// to subscribe; publishing does not need it.
	MetadataConsumerID = "consumerID"
)

// componentMetadata describes the metadata for GetComponentMetadata.
type componentMetadata struct {
	BrokerAddress string `mapstructure:"brokerAddress"`
	ConsumerID    string `mapstructure:"consumerID"`
}

// subscribeWait bounds how long Subscribe waits for the broker to confirm
// the subscription, so that events published right after Subscribe returns
// reach it. A broker that cannot be reached ends the wait at once.
const subscribeWait = 2 * time.Second

// component is the pubsub.PubSub backed by a broker Server.
type component struct {
	log logger.Logger

	// Set by Init, read-only afterwards.
	conn       *grpc.ClientConn
	client     brokerv1.BrokerClient
	consumerID string

	closeCtx    context.Context // cancelled by Close
	closeCancel context.CancelFunc

	mu     sync.Mutex
	inited bool
	closed bool
	wg     sync.WaitGroup // subscriptions
}

// NewPubSub returns an uninitialised broker pub/sub component (component
// type pubsub.outrig-broker).
//
// Lifecycle: Init (metadata brokerAddress, consumerID), then Publish and
// Subscribe from any goroutine, then Close. Init does not dial: the
// connection is made by the first call and remade after a broker restart.
// Subscribe returns once the broker confirmed the subscription (or could not
// be reached, or after a short wait) and delivers in the background, calling
// the handler concurrently for up to the broker's in-flight limit of
// messages, until its context is cancelled or Close is called; a
// subscription whose stream breaks reconnects with backoff. A handler error
// nacks the message (the broker delivers it again), nil acks it. Close stops
// every subscription, waits for their goroutines and handlers (handlers get
// a cancelled context) and closes the connection.
func NewPubSub(log logger.Logger) pubsub.PubSub {
	ctx, cancel := context.WithCancel(context.Background())
	return &component{log: log, closeCtx: ctx, closeCancel: cancel}
}

// Init validates the metadata and prepares the connection.
func (c *component) Init(_ context.Context, md pubsub.Metadata) error {
	addr, _ := metadata.GetMetadataProperty(md.Properties, MetadataBrokerAddress)
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return fmt.Errorf("metadata %s is required (host:port of the control plane serving the broker)", MetadataBrokerAddress)
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return fmt.Errorf("metadata %s %q is not host:port: %w", MetadataBrokerAddress, addr, errOrMissingPort(err))
	}
	consumerID, _ := metadata.GetMetadataProperty(md.Properties, MetadataConsumerID)
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}))
	if err != nil {
		return fmt.Errorf("metadata %s %q: %w", MetadataBrokerAddress, addr, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.inited {
		_ = conn.Close()
		return errors.New("broker pub/sub: Init called twice or after Close")
	}
	c.inited = true
	c.conn = conn
	c.client = brokerv1.NewBrokerClient(conn)
	c.consumerID = strings.TrimSpace(consumerID)
	return nil
}

func errOrMissingPort(err error) error {
	if err != nil {
		return err
	}
	return errors.New("missing port")
}

// ready returns an error unless the component is initialised and open.
func (c *component) ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return fmt.Errorf("broker pub/sub is closed: %w", errkind.ErrUnavailable)
	case !c.inited:
		return fmt.Errorf("broker pub/sub is not initialised: %w", errkind.ErrUnavailable)
	}
	return nil
}

// Features: none of the optional ones.
func (c *component) Features() []pubsub.Feature { return nil }

// Publish sends one message to the broker. RESOURCE_EXHAUSTED from the
// broker (a subscribed group is full) wraps errkind.ErrResourceExhausted.
func (c *component) Publish(ctx context.Context, req *pubsub.PublishRequest) error {
	if err := c.ready(); err != nil {
		return err
	}
	if req == nil || req.Topic == "" {
		return errkind.Required("topic")
	}
	in := &brokerv1.PublishRequest{Topic: req.Topic, Data: req.Data, Metadata: req.Metadata}
	if req.ContentType != nil {
		in.ContentType = *req.ContentType
	}
	if _, err := c.client.Publish(ctx, in); err != nil {
		return fmt.Errorf("broker publish to topic %q: %w: %w", req.Topic, kindOf(err), err)
	}
	return nil
}

// kindOf maps a broker status to the sidecar's failure kinds.
func kindOf(err error) error {
	switch status.Code(err) {
	case codes.ResourceExhausted:
		return errkind.ErrResourceExhausted
	case codes.InvalidArgument:
		return errkind.ErrInvalidArgument
	case codes.DeadlineExceeded:
		return context.DeadlineExceeded
	case codes.Canceled:
		return context.Canceled
	default:
		return errkind.ErrUnavailable
	}
}

// Subscribe joins the component's consumer group on req.Topic and delivers
// to handler in the background until ctx is cancelled or Close is called.
func (c *component) Subscribe(ctx context.Context, req pubsub.SubscribeRequest, handler pubsub.Handler) error {
	if err := c.ready(); err != nil {
		return err
	}
	switch {
	case req.Topic == "":
		return errkind.Required("topic")
	case handler == nil:
		return errkind.Required("handler")
	case c.consumerID == "":
		return fmt.Errorf("metadata %s is required to subscribe (the consumer group; the sidecar sets it to the app id): %w", MetadataConsumerID, errkind.ErrInvalidArgument)
	}
	subCtx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.closeCtx, cancel)
	s := &subscription{
		log: c.log, client: c.client, topic: req.Topic, group: c.consumerID,
		handler: handler, firstTry: make(chan struct{}),
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		stop()
		cancel()
		return fmt.Errorf("broker pub/sub is closed: %w", errkind.ErrUnavailable)
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		defer stop()
		defer cancel()
		s.run(subCtx)
	}()
	wait := time.NewTimer(subscribeWait)
	defer wait.Stop()
	select {
	case <-s.firstTry:
	case <-wait.C:
		c.log.Warnf("broker subscription to topic %q (group %q) not confirmed after %s; continuing in the background", req.Topic, c.consumerID, subscribeWait)
	case <-subCtx.Done():
	}
	return nil
}

// Close stops every subscription, waits for them and closes the connection.
// Idempotent.
func (c *component) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.closeCancel()
	c.wg.Wait()
	if c.conn != nil {
		if err := c.conn.Close(); err != nil {
			return fmt.Errorf("broker pub/sub close: %w", err)
		}
	}
	return nil
}

// GetComponentMetadata describes the metadata keys.
func (c *component) GetComponentMetadata() metadata.MetadataMap {
	m := metadata.MetadataMap{}
	_ = metadata.GetMetadataInfoFromStructType(reflect.TypeOf(componentMetadata{}), &m, metadata.PubSubType)
	return m
}

package main

import (
	"context"
	"errors"
	"fmt"
	"net"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
	daprpb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"

	outrig "github.com/outrig/outrig/sdk-go"
)

// Names shared by the Outrig and Dapr resources (the same component YAML
// serves both) and by the echo callee.
const (
	storeName = "statestore"
	// memStoreName is a state.in-memory store: the sidecar path alone,
	// without Redis (no direct contender).
	memStoreName = "memstore"
	pubsubName   = "pubsub"
	echoApp      = "echo"
	echoMethod   = "echo"
	// streamMaxLen bounds each Redis stream published to (maxLenApprox):
	// nothing consumes them during the benchmark.
	streamMaxLen = 10000
)

// api is one contender's way to the operations measured. Implementations
// are safe for concurrent use by many callers (one connection or pool
// shared by all, as an application would).
type api interface {
	getState(ctx context.Context, store, key string) ([]byte, error)
	saveState(ctx context.Context, store, key string, value []byte) error
	publish(ctx context.Context, topic string, data []byte) error
	invoke(ctx context.Context, data []byte) ([]byte, error)
	close() error
}

// directAPI is the application without a sidecar: go-redis to Redis for
// state (GET/SET of the value) and publish (XADD, as the pubsub.redis
// component does), and a gRPC call straight to the echo app for invoke.
type directAPI struct {
	rdb  *redis.Client
	conn *grpc.ClientConn
	app  daprpb.AppCallbackClient
}

func newDirectAPI(redisAddr, echoAddr string) (*directAPI, error) {
	conn, err := grpc.NewClient(echoAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("direct: dial echo app %s: %w", echoAddr, err)
	}
	return &directAPI{
		rdb:  redis.NewClient(&redis.Options{Addr: redisAddr}),
		conn: conn,
		app:  daprpb.NewAppCallbackClient(conn),
	}, nil
}

// getState ignores store: direct access has only Redis.
func (d *directAPI) getState(ctx context.Context, _, key string) ([]byte, error) {
	return d.rdb.Get(ctx, key).Bytes()
}

func (d *directAPI) saveState(ctx context.Context, _, key string, value []byte) error {
	return d.rdb.Set(ctx, key, value, 0).Err()
}

func (d *directAPI) publish(ctx context.Context, topic string, data []byte) error {
	return d.rdb.XAdd(ctx, &redis.XAddArgs{Stream: topic, MaxLen: streamMaxLen, Approx: true, Values: []any{"data", data}}).Err()
}

func (d *directAPI) invoke(ctx context.Context, data []byte) ([]byte, error) {
	resp, err := d.app.OnInvoke(ctx, &commonv1pb.InvokeRequest{Method: echoMethod, Data: &anypb.Any{Value: data}, ContentType: "application/octet-stream"})
	if err != nil {
		return nil, err
	}
	return resp.GetData().GetValue(), nil
}

func (d *directAPI) close() error { return errors.Join(d.rdb.Close(), d.conn.Close()) }

// outrigAPI is the Go SDK on one of its transports: the default (unary
// calls on Multiplex streams) for tcp and uds, WithUnaryRPC for unary,
// WithSharedMemory for shm.
type outrigAPI struct{ c *outrig.Client }

func newOutrigAPI(ctx context.Context, address, key string) (*outrigAPI, error) {
	opts := []outrig.Option{outrig.WithAddress(address)}
	switch key {
	case "shm":
		opts = append(opts, outrig.WithSharedMemory(""))
	case "unary":
		opts = append(opts, outrig.WithUnaryRPC())
	}
	c, err := outrig.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("outrig client %s: %w", address, err)
	}
	return &outrigAPI{c: c}, nil
}

func (o *outrigAPI) getState(ctx context.Context, store, key string) ([]byte, error) {
	it, err := o.c.GetState(ctx, store, key)
	if err != nil {
		return nil, err
	}
	return it.Value, nil
}

func (o *outrigAPI) saveState(ctx context.Context, store, key string, value []byte) error {
	return o.c.SaveState(ctx, store, key, value)
}

func (o *outrigAPI) publish(ctx context.Context, topic string, data []byte) error {
	return o.c.Publish(ctx, pubsubName, topic, data)
}

func (o *outrigAPI) invoke(ctx context.Context, data []byte) ([]byte, error) {
	r, err := o.c.Invoke(ctx, echoApp, echoMethod, data, outrig.WithContentType("application/octet-stream"))
	if err != nil {
		return nil, err
	}
	return r.Data, nil
}

func (o *outrigAPI) close() error { return o.c.Close() }

// daprAPI is daprd's gRPC API through the runtime protos of the
// github.com/dapr/dapr module (the Go SDK is a thin layer over the same
// client).
type daprAPI struct {
	conn *grpc.ClientConn
	c    daprpb.DaprClient
}

func newDaprAPI(addr string) (*daprAPI, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("daprd client %s: %w", addr, err)
	}
	return &daprAPI{conn: conn, c: daprpb.NewDaprClient(conn)}, nil
}

func (d *daprAPI) getState(ctx context.Context, store, key string) ([]byte, error) {
	r, err := d.c.GetState(ctx, &daprpb.GetStateRequest{StoreName: store, Key: key})
	if err != nil {
		return nil, err
	}
	return r.GetData(), nil
}

func (d *daprAPI) saveState(ctx context.Context, store, key string, value []byte) error {
	_, err := d.c.SaveState(ctx, &daprpb.SaveStateRequest{StoreName: store, States: []*commonv1pb.StateItem{{Key: key, Value: value}}})
	return err
}

func (d *daprAPI) publish(ctx context.Context, topic string, data []byte) error {
	_, err := d.c.PublishEvent(ctx, &daprpb.PublishEventRequest{PubsubName: pubsubName, Topic: topic, Data: data, DataContentType: "application/json"})
	return err
}

func (d *daprAPI) invoke(ctx context.Context, data []byte) ([]byte, error) {
	r, err := d.c.InvokeService(ctx, &daprpb.InvokeServiceRequest{Id: echoApp, Message: &commonv1pb.InvokeRequest{
		Method: echoMethod, Data: &anypb.Any{Value: data}, ContentType: "application/octet-stream",
		HttpExtension: &commonv1pb.HTTPExtension{Verb: commonv1pb.HTTPExtension_POST},
	}})
	if err != nil {
		return nil, err
	}
	return r.GetData().GetValue(), nil
}

func (d *daprAPI) close() error { return d.conn.Close() }

// echoServer is the callee application of the direct and daprd invoke
// paths: a gRPC AppCallback server (daprd's app channel with
// --app-protocol grpc) that answers every invocation with its own data.
// The Outrig callee is the SDK's Serve stream (env.go).
type echoServer struct {
	daprpb.UnimplementedAppCallbackServer
	srv  *grpc.Server
	addr string
}

func startEcho() (*echoServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("echo app: %w", err)
	}
	e := &echoServer{srv: grpc.NewServer(), addr: l.Addr().String()}
	daprpb.RegisterAppCallbackServer(e.srv, e)
	go func() { _ = e.srv.Serve(l) }()
	return e, nil
}

func (e *echoServer) OnInvoke(_ context.Context, in *commonv1pb.InvokeRequest) (*commonv1pb.InvokeResponse, error) {
	return &commonv1pb.InvokeResponse{Data: in.GetData(), ContentType: in.GetContentType()}, nil
}

// ListTopicSubscriptions answers daprd's start-up question: none.
func (e *echoServer) ListTopicSubscriptions(context.Context, *emptypb.Empty) (*daprpb.ListTopicSubscriptionsResponse, error) {
	return &daprpb.ListTopicSubscriptionsResponse{}, nil
}

// ListInputBindings answers daprd's start-up question: none.
func (e *echoServer) ListInputBindings(context.Context, *emptypb.Empty) (*daprpb.ListInputBindingsResponse, error) {
	return &daprpb.ListInputBindingsResponse{}, nil
}

func (e *echoServer) stop() { e.srv.Stop() }

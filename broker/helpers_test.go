package broker

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dapr/components-contrib/pubsub"
	"github.com/dapr/kit/logger"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	brokerv1 "github.com/outrig/outrig/api/gen/outrig/broker/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testBroker is a Server served by a real gRPC server on loopback.
type testBroker struct {
	*Server
	addr string
	gs   *grpc.Server
}

// startBroker serves a new broker on addr ("127.0.0.1:0" for any port).
func startBroker(t *testing.T, addr string, opts Options) *testBroker {
	t.Helper()
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	gs := newGRPCServer(srv)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	b := &testBroker{Server: srv, addr: lis.Addr().String(), gs: gs}
	t.Cleanup(func() {
		b.stop()
		<-served
	})
	return b
}

func newGRPCServer(srv *Server) *grpc.Server {
	gs := grpc.NewServer()
	srv.Register(gs)
	return gs
}

// stop closes the broker and its gRPC server (idempotent).
func (b *testBroker) stop() {
	_ = b.Close()
	b.gs.Stop()
}

// waitMembers waits until topic/group has n live members.
func (b *testBroker) waitMembers(t *testing.T, topic, group string, n int) {
	t.Helper()
	eventually(t, func() bool { return b.group(topic, group).Members == n }, "group %s/%s to have %d members (has %+v)", topic, group, n, b.Stats())
}

func (b *testBroker) group(topic, group string) GroupStats {
	for _, g := range b.Stats() {
		if g.Topic == topic && g.Group == group {
			return g
		}
	}
	return GroupStats{}
}

func eventually(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+format, args...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newComponent returns an initialised broker pub/sub closed at cleanup.
func newComponent(t *testing.T, addr, consumerID string) pubsub.PubSub {
	t.Helper()
	c := NewPubSub(logger.NewLogger("broker-test"))
	props := map[string]string{MetadataBrokerAddress: addr}
	if consumerID != "" {
		props[MetadataConsumerID] = consumerID
	}
	md := pubsub.Metadata{}
	md.Properties = props
	if err := c.Init(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

// recorder counts the messages a handler received, by payload.
type recorder struct {
	mu   sync.Mutex
	seen map[string]int
	n    int
}

func newRecorder() *recorder { return &recorder{seen: map[string]int{}} }

func (r *recorder) handler(_ context.Context, msg *pubsub.NewMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[string(msg.Data)]++
	r.n++
	return nil
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *recorder) counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.seen))
	for k, v := range r.seen {
		out[k] = v
	}
	return out
}

func publish(t *testing.T, c pubsub.PubSub, topic, data string) {
	t.Helper()
	if err := c.Publish(context.Background(), &pubsub.PublishRequest{Topic: topic, Data: []byte(data)}); err != nil {
		t.Fatalf("publish %q to %s: %v", data, topic, err)
	}
}

// rawMember is a Subscribe stream driven by hand, to control acks exactly.
type rawMember struct {
	t      *testing.T
	stream brokerv1.Broker_SubscribeClient
	cancel context.CancelFunc
}

func dialBroker(t *testing.T, addr string) brokerv1.BrokerClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return brokerv1.NewBrokerClient(conn)
}

// subscribeRaw opens a stream, subscribes and waits for the confirmation.
func subscribeRaw(t *testing.T, client brokerv1.BrokerClient, topic, group string) *rawMember {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := client.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := &rawMember{t: t, stream: stream, cancel: cancel}
	m.send(&brokerv1.SubscribeRequest{Request: &brokerv1.SubscribeRequest_Subscription{Subscription: &brokerv1.Subscription{Topic: topic, Group: group}}})
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("subscribe %s/%s: %v", topic, group, err)
	}
	if resp.GetSubscribed() == nil {
		t.Fatalf("first response %v, want subscribed", resp)
	}
	return m
}

func (m *rawMember) send(req *brokerv1.SubscribeRequest) {
	m.t.Helper()
	if err := m.stream.Send(req); err != nil {
		m.t.Fatalf("send: %v", err)
	}
}

func (m *rawMember) ack(id uint64, ok bool) {
	m.t.Helper()
	m.send(&brokerv1.SubscribeRequest{Request: &brokerv1.SubscribeRequest_Ack{Ack: &brokerv1.Ack{DeliveryId: id, Ok: ok}}})
}

// recv returns the next message, failing the test after timeout.
func (m *rawMember) recv(timeout time.Duration) *brokerv1.Message {
	m.t.Helper()
	got, err := m.tryRecv(timeout)
	if err != nil {
		m.t.Fatal(err)
	}
	return got
}

type recvResult struct {
	resp *brokerv1.SubscribeResponse
	err  error
}

// tryRecv returns the next message or an error; on timeout the stream is
// cancelled (a pending Recv cannot be abandoned otherwise).
func (m *rawMember) tryRecv(timeout time.Duration) (*brokerv1.Message, error) {
	ch := make(chan recvResult, 1)
	go func() {
		resp, err := m.stream.Recv()
		ch <- recvResult{resp, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		return r.resp.GetMessage(), nil
	case <-time.After(timeout):
		m.cancel()
		<-ch
		return nil, errTimeout
	}
}

type timeoutError struct{}

func (timeoutError) Error() string { return "timed out waiting for a message" }

var errTimeout error = timeoutError{}

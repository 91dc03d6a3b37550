package zkstore

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/testing/protocmp"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/config"
)

// The tests run against the ZooKeeper of scripts/backends.sh (127.0.0.1:2181),
// each under a root of its own, deleted at the end.
const zkAddr = "127.0.0.1:2181"

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

// testURL returns a fresh store URL and deletes its tree when the test ends.
func testURL(t *testing.T) string {
	t.Helper()
	conn, _, err := zk.Connect([]string{zkAddr}, 4*time.Second, zk.WithLogInfo(false), zk.WithLogger(zkLogger{quiet}))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := conn.Exists("/"); err != nil {
		conn.Close()
		t.Fatalf("ZooKeeper at %s is not reachable (scripts/backends.sh up zookeeper): %v", zkAddr, err)
	}
	root := fmt.Sprintf("/outrig-test-%d", rand.Uint64())
	t.Cleanup(func() {
		deleteTree(conn, root)
		conn.Close()
	})
	return "zk://" + zkAddr + root
}

func deleteTree(conn *zk.Conn, p string) {
	children, _, err := conn.Children(p)
	if err != nil {
		return
	}
	for _, c := range children {
		deleteTree(conn, p+"/"+c)
	}
	_ = conn.Delete(p, -1)
}

func open(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(url, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestParseURL(t *testing.T) {
	servers, root, err := ParseURL("zk://a:2181,b:2182/outrig/prod/")
	if err != nil || !cmp.Equal(servers, []string{"a:2181", "b:2182"}) || root != "/outrig/prod" {
		t.Fatalf("ParseURL = %v %q %v", servers, root, err)
	}
	for _, bad := range []string{"", "http://a:1/x", "zk://a:1", "zk://a:1/", "zk:///x", "zk://a:1/x?y=1", "zk://u@a:1/x"} {
		if _, _, err := ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
}

func TestNames(t *testing.T) {
	for _, id := range []string{"checkout", "host-1.example", "a/b", "x~y", "%", ".", "..", "ünï"} {
		e := escapeName(id)
		back, err := unescapeName(e)
		if err != nil || back != id {
			t.Errorf("escape(%q) = %q → %q, %v", id, e, back, err)
		}
		if e == "." || e == ".." || len(e) == 0 {
			t.Errorf("escape(%q) = %q is not a valid node name", id, e)
		}
		for _, c := range e {
			if c == '/' || c == '~' {
				t.Errorf("escape(%q) = %q keeps %q", id, e, c)
			}
		}
		inst, seq, ok := parseChild(e + "~0000000042")
		if !ok || inst != id || seq != 42 {
			t.Errorf("parseChild(%q) = %q %d %v", e+"~0000000042", inst, seq, ok)
		}
	}
	for _, bad := range []string{"noseq", "~12", "a~x"} {
		if _, _, ok := parseChild(bad); ok {
			t.Errorf("parseChild(%q) accepted", bad)
		}
	}
}

func testSet(rate string) *config.Set {
	set := emptySet()
	set.Components["orders"] = &configv1.Component{Name: "orders", Type: "state.redis", Version: "v1",
		Metadata: []*configv1.MetadataItem{{Name: "redisHost", Value: "127.0.0.1:6379"}}}
	set.Components["events"] = &configv1.Component{Name: "events", Type: "pubsub.redis", Version: "v1"}
	set.Policies["limit"] = &configv1.Policy{Name: "limit",
		Targets:   []*configv1.PolicyTarget{{Kind: "invoke", Name: "payments"}},
		RateLimit: &configv1.RateLimit{Rate: mustFloat(rate)}}
	set.Subscriptions["paid"] = &configv1.Subscription{Name: "paid", PubsubName: "events", Topic: "paid", DefaultRoute: "/paid"}
	return set
}

func mustFloat(s string) float64 {
	var f float64
	fmt.Sscan(s, &f)
	return f
}

// A loaded set reads back identical from another replica's connection;
// loading it again changes nothing; a change is written as that change and
// seen by a watching replica.
func TestLoadConfigAndWatch(t *testing.T) {
	url := testURL(t)
	loader := open(t, url)
	res, err := loader.LoadConfig(testSet("10"))
	if err != nil {
		t.Fatal(err)
	}
	if res != (LoadResult{Created: 4}) {
		t.Errorf("first load = %+v, want 4 created", res)
	}
	replica := open(t, url)
	got, err := replica.ConfigReader().Read()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(testSet("10"), got, protocmp.Transform()); diff != "" {
		t.Fatalf("read back (-want +got):\n%s", diff)
	}
	if res, err := loader.LoadConfig(testSet("10")); err != nil || res != (LoadResult{Unchanged: 4}) {
		t.Fatalf("same load again = %+v, %v", res, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	sets := make(chan *config.Set, 10)
	done := make(chan struct{})
	go func() { defer close(done); replica.ConfigReader().Watch(ctx, func(s *config.Set) { sets <- s }) }()
	defer func() { cancel(); <-done }()
	<-sets // the current set

	next := testSet("20")
	delete(next.Subscriptions, "paid")
	start := time.Now()
	if res, err := loader.LoadConfig(next); err != nil || res != (LoadResult{Updated: 1, Deleted: 1, Unchanged: 2}) {
		t.Fatalf("second load = %+v, %v", res, err)
	}
	select {
	case s := <-sets:
		t.Logf("replica saw the load after %v", time.Since(start))
		if diff := cmp.Diff(next, s, protocmp.Transform()); diff != "" {
			t.Fatalf("watched set (-want +got):\n%s", diff)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watching replica did not see the load")
	}
}

// A node written by hand that does not validate is skipped, and its last
// good version keeps serving.
func TestConfigReaderKeepsLastGood(t *testing.T) {
	url := testURL(t)
	s := open(t, url)
	if _, err := s.LoadConfig(testSet("10")); err != nil {
		t.Fatal(err)
	}
	r := s.ConfigReader()
	if _, err := r.Read(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.conn.Set(s.kindPath(configKinds()[0])+"/orders", []byte{0xff, 0xff}, -1); err != nil {
		t.Fatal(err)
	}
	got, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	if c := got.Components["orders"]; c == nil || c.GetType() != "state.redis" {
		t.Fatalf("orders after a corrupt write = %v", c)
	}
	if fresh, _ := s.ConfigReader().Read(); fresh.Components["orders"] != nil {
		t.Fatal("a reader without a last good version serves the corrupt node")
	}
}

// events records what an InstanceReader publishes.
type events struct {
	mu  sync.Mutex
	log []string
	ch  chan struct{}
}

func newEvents() *events { return &events{ch: make(chan struct{}, 100)} }

func (e *events) publish(up map[string]*configv1.Endpoint, rm []string) {
	e.mu.Lock()
	var names []string
	for n, ep := range up {
		names = append(names, "+"+n+"@"+ep.GetAddress())
	}
	for _, n := range rm {
		names = append(names, "-"+n)
	}
	sort.Strings(names)
	e.log = append(e.log, names...)
	e.mu.Unlock()
	e.ch <- struct{}{}
}

func (e *events) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.log
	e.log = nil
	return out
}

// wait returns the events once there are n of them, or fails.
func (e *events) wait(t *testing.T, n int, d time.Duration) []string {
	t.Helper()
	deadline := time.After(d)
	for {
		e.mu.Lock()
		have := len(e.log)
		e.mu.Unlock()
		if have >= n {
			return e.take()
		}
		select {
		case <-e.ch:
		case <-deadline:
			t.Fatalf("want %d events within %v, have %v", n, d, e.take())
		}
	}
}

func (e *events) none(t *testing.T, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	if got := e.take(); len(got) > 0 {
		t.Fatalf("unexpected events %v", got)
	}
}

type replica struct {
	s      *Store
	w      *InstanceWriter
	ev     *events
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func startReplica(t *testing.T, url string, grace time.Duration) *replica {
	t.Helper()
	s, err := Open(url, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{s: s, w: s.InstanceWriter("127.0.0.1:1"), ev: newEvents()}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	ready := make(chan struct{})
	reader := s.InstanceReader(grace, r.ev.publish)
	r.done.Add(2)
	go func() { defer r.done.Done(); r.w.Run(ctx) }()
	go func() { defer r.done.Done(); reader.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("reader not ready")
	}
	t.Cleanup(r.stop)
	return r
}

// stop ends the replica: its session closes, so its nodes vanish at once.
func (r *replica) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.done.Wait()
	r.s.Close()
	r.cancel = nil
}

func (r *replica) written(t *testing.T) {
	t.Helper()
	select {
	case <-r.w.Idle():
	case <-time.After(5 * time.Second):
		t.Fatal("writer did not finish")
	}
}

func inst(app, id, addr string) map[string]*configv1.Endpoint {
	return map[string]*configv1.Endpoint{app + "/" + id: {AppId: app, InstanceId: id, Address: addr}}
}

// An instance written by one replica is published by every replica; a
// change is published as that change; an expiry or deregistration at a
// live replica is published at once.
func TestInstancesSharedBetweenReplicas(t *testing.T) {
	url := testURL(t)
	a := startReplica(t, url, 2*time.Second)
	b := startReplica(t, url, 2*time.Second)

	a.w.Publish(inst("pay", "p1", "10.0.0.1:1"), nil)
	if got := b.ev.wait(t, 1, 5*time.Second); !cmp.Equal(got, []string{"+pay/p1@10.0.0.1:1"}) {
		t.Fatalf("b published %v", got)
	}
	a.ev.wait(t, 1, 5*time.Second)

	a.w.Publish(inst("pay", "p1", "10.0.0.2:1"), nil)
	if got := b.ev.wait(t, 1, 5*time.Second); !cmp.Equal(got, []string{"+pay/p1@10.0.0.2:1"}) {
		t.Fatalf("after the change b published %v", got)
	}
	a.ev.wait(t, 1, 5*time.Second)
	a.written(t)
	if children, _, _ := a.s.conn.Children(a.s.appPath("pay")); len(children) != 1 {
		t.Errorf("app holds %d nodes after a change, want 1 (the previous one deleted)", len(children))
	}

	start := time.Now()
	a.w.Publish(nil, []string{"pay/p1"}) // the lease expired at a
	if got := b.ev.wait(t, 1, 5*time.Second); !cmp.Equal(got, []string{"-pay/p1"}) {
		t.Fatalf("after expiry b published %v", got)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("removal by a live replica took %v (held for the grace?)", d)
	}
	a.ev.wait(t, 1, 5*time.Second)

	// Deregistration through b removes a node a wrote.
	a.w.Publish(inst("inv", "i1", "10.0.0.3:1"), nil)
	b.ev.wait(t, 1, 5*time.Second)
	a.ev.wait(t, 1, 5*time.Second)
	b.w.Deregister("inv", "i1")
	if got := b.ev.wait(t, 1, 5*time.Second); !cmp.Equal(got, []string{"-inv/i1"}) {
		t.Fatalf("after deregistration through b: %v", got)
	}
}

// The replica holding an instance dies; its sidecar registers with another
// replica: readers publish nothing at all (no removal, no change). Without
// a new registration the instance is removed after the grace period.
func TestReplicaDeathTakeoverPublishesNothing(t *testing.T) {
	url := testURL(t)
	a := startReplica(t, url, 1500*time.Millisecond)
	b := startReplica(t, url, 1500*time.Millisecond)
	a.w.Publish(inst("pay", "p1", "10.0.0.1:1"), nil)
	a.w.Publish(inst("pay", "p2", "10.0.0.2:1"), nil)
	b.ev.wait(t, 2, 5*time.Second)

	a.stop() // session closed: a's nodes and replica node vanish now
	time.Sleep(200 * time.Millisecond)
	b.w.Publish(inst("pay", "p1", "10.0.0.1:1"), nil) // p1's sidecar re-registered with b
	b.written(t)
	b.ev.none(t, time.Second)
	start := time.Now()
	if got := b.ev.wait(t, 1, 5*time.Second); !cmp.Equal(got, []string{"-pay/p2"}) {
		t.Fatalf("after the grace b published %v, want only p2's removal", got)
	}
	t.Logf("p2 removed %v after the checks, grace 1.5s", time.Since(start)+time.Second+200*time.Millisecond)
	b.ev.none(t, 300*time.Millisecond)
}

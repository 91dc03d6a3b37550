package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrig/outrig/config"
	"github.com/outrig/outrig/controlplane/zkstore"
	"github.com/outrig/outrig/xds/client"
	"github.com/outrig/outrig/xds/registry"
	"github.com/outrig/outrig/xds/resource"
)

// storeURL returns a fresh store on the ZooKeeper of scripts/backends.sh,
// deleted when the test ends.
func storeURL(t *testing.T) string {
	t.Helper()
	conn, _, err := zk.Connect([]string{"127.0.0.1:2181"}, 4*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := conn.Exists("/"); err != nil {
		conn.Close()
		t.Fatalf("ZooKeeper at 127.0.0.1:2181 is not reachable (scripts/backends.sh up zookeeper): %v", err)
	}
	root := fmt.Sprintf("/outrig-cp-test-%d", rand.Uint64())
	t.Cleanup(func() {
		var del func(string)
		del = func(p string) {
			children, _, _ := conn.Children(p)
			for _, c := range children {
				del(p + "/" + c)
			}
			_ = conn.Delete(p, -1)
		}
		del(root)
		conn.Close()
	})
	return "zk://127.0.0.1:2181" + root
}

// loadDir writes a resources folder into the store, as `outrig
// control-plane load` does.
func loadDir(t *testing.T, url, dir string) {
	t.Helper()
	set, err := config.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := zkstore.Open(url, zkstore.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.LoadConfig(set); err != nil {
		t.Fatal(err)
	}
}

type replica struct {
	cp      *ControlPlane
	addr    string
	metrics *prometheus.Registry
	stop    func()
}

func startReplica(t *testing.T, url string) *replica {
	t.Helper()
	metrics := prometheus.NewRegistry()
	cp, err := New(Options{Store: url, Metrics: metrics, Logger: slog.New(slog.DiscardHandler),
		Registry: registry.Options{DefaultTTL: 3 * time.Second}, ReplicaGrace: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	addr, stop, err := cp.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return &replica{cp: cp, addr: addr, metrics: metrics, stop: stop}
}

func (r *replica) sent(t *testing.T) float64 {
	t.Helper()
	mfs, _ := r.metrics.Gather()
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "outrig_xds_resources_sent_total" {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// Two replicas on one store serve the same configuration and instances with
// the same versions. A sidecar connected to the first fails over to the
// second when the first stops: it receives nothing it already has, its
// registration moves to the second replica, and the second replica never
// stops serving its endpoint.
func TestReplicasShareStoreAndFailover(t *testing.T) {
	url := storeURL(t)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "c.yaml"), docs(component("orders", "state.redis"), component("private", "state.redis", "billing")))
	write(t, filepath.Join(dir, "p.yaml"), policy("limit", "10"))
	loadDir(t, url, dir)
	a := startReplica(t, url)
	b := startReplica(t, url)

	for _, tc := range []struct{ typeURL, name string }{
		{resource.ComponentType, "orders"}, {resource.ComponentType, "private"}, {resource.PolicyType, "limit"},
	} {
		_, va, oka := a.cp.XDS().Resource(tc.typeURL, tc.name)
		_, vb, okb := b.cp.XDS().Resource(tc.typeURL, tc.name)
		if !oka || !okb || va != vb {
			t.Errorf("%s %s: replica a %v %s, replica b %v %s", tc.typeURL, tc.name, oka, va, okb, vb)
		}
	}

	// The callee sidecar (billing) and the caller (checkout) both start on a.
	callee, _ := connect(t, a.addr+","+b.addr, "billing")
	reg, err := client.NewRegistrar(callee.Conn(), client.RegistrarOptions{InstanceID: "bill-1", Address: "127.0.0.1:9100",
		AppIDs: []string{"billing"}, TTL: 3 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(context.Background())
	caller, rec := connect(t, a.addr+","+b.addr, "checkout")
	var eps int
	deadline := time.Now().Add(5 * time.Second)
	for eps == 0 {
		got, _, err := caller.Endpoints(context.Background(), "billing")
		if err != nil {
			t.Fatal(err)
		}
		eps = len(got)
		if time.Now().After(deadline) {
			t.Fatal("billing's endpoint never reached the caller")
		}
		time.Sleep(10 * time.Millisecond)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		_, va, oka := a.cp.XDS().Resource(resource.EndpointType, "billing/bill-1")
		_, vb, okb := b.cp.XDS().Resource(resource.EndpointType, "billing/bill-1")
		if oka && okb && va == vb {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint on a %v %s, on b %v %s", oka, va, okb, vb)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := b.sent(t); got != 0 {
		t.Fatalf("replica b sent %v resources before any failover", got)
	}
	rec.drain()
	before := caller.Stats()

	// Watch b's endpoint the whole time: it must never go.
	lost := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		for ctx.Err() == nil {
			if _, _, ok := b.cp.XDS().Resource(resource.EndpointType, "billing/bill-1"); !ok {
				select {
				case lost <- struct{}{}:
				default:
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	start := time.Now()
	a.stop()
	deadline = time.Now().Add(5 * time.Second)
	for b.cp.Registry().Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the registration did not move to replica b")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("registration moved to b %v after a stopped", time.Since(start))
	for caller.Stats().Streams < before.Streams+1 {
		if time.Since(start) > 2*time.Second {
			t.Fatal("the caller did not reconnect to b within 2s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("caller reconnected to b %v after a stopped", time.Since(start))
	time.Sleep(4 * time.Second) // past a's session and the grace period
	cancel()
	<-watching
	select {
	case <-lost:
		t.Fatal("replica b stopped serving billing's endpoint during the failover")
	default:
	}
	rec.none(t, 100*time.Millisecond)
	if got := caller.Stats().Resources - before.Resources; got != 0 {
		t.Errorf("the caller received %d resources from replica b, want 0", got)
	}
	if got, _ := caller.CachedEndpoints("billing"); len(got) != 1 {
		t.Errorf("the caller holds %d endpoints of billing, want 1", len(got))
	}
}

// A replica started on an empty store serves nothing but is ready; an
// unknown app id is still answered at once.
func TestReplicaOnEmptyStore(t *testing.T) {
	r := startReplica(t, storeURL(t))
	c, _ := connect(t, r.addr, "checkout")
	start := time.Now()
	if _, found, err := c.Endpoints(context.Background(), "nobody"); err != nil || found {
		t.Fatalf("Endpoints(nobody) = %v %v", found, err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("not-found took %v", d)
	}
}

func TestStoreOptionsValidation(t *testing.T) {
	for _, o := range []Options{
		{ResourcesDir: "x", Store: "zk://127.0.0.1:2181/x"},
		{Store: "zk://127.0.0.1:2181"},
		{Store: "http://x/y"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

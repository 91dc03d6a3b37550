package controlplane

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/outrig/outrig/controlplane/zkstore"
)

// storeParts are the pieces of a replica of a replicated control plane.
type storeParts struct {
	store  *zkstore.Store
	writer *zkstore.InstanceWriter
}

// startStore opens the store, publishes its configuration and every
// instance in it, and starts following both and writing this replica's
// leases, in goroutines that end with ctx (tracked by wg). addr is this
// replica's gRPC address, recorded in its replica node.
func (cp *ControlPlane) startStore(ctx context.Context, wg *sync.WaitGroup, addr string) error {
	st, err := zkstore.Open(cp.opts.Store, zkstore.Options{
		SessionTimeout: cp.opts.StoreSessionTimeout,
		ConnectTimeout: cp.opts.StartTimeout,
		Logger:         cp.log,
	})
	if err != nil {
		return err
	}
	cp.store = &storeParts{store: st, writer: st.InstanceWriter(addr)}

	cfg := st.ConfigReader()
	set, err := cfg.Read()
	if err != nil {
		return fmt.Errorf("read the configuration from %s: %w", cp.opts.Store, err)
	}
	cp.publishConfig(set)

	grace := cp.opts.ReplicaGrace
	if grace <= 0 {
		grace = cp.opts.Registry.DefaultTTL
		if grace <= 0 {
			grace = 10 * time.Second
		}
	}
	reader := st.InstanceReader(grace, cp.publishEndpoints)
	ready := make(chan struct{})
	wg.Add(3)
	go func() { defer wg.Done(); cfg.Watch(ctx, cp.publishConfig) }()
	go func() { defer wg.Done(); reader.Run(ctx, func() { close(ready) }) }()
	go func() { defer wg.Done(); cp.store.writer.Run(ctx) }()
	select {
	case <-ready:
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(cp.opts.StartTimeout):
		return fmt.Errorf("reading the instances from %s took more than %v", cp.opts.Store, cp.opts.StartTimeout)
	}
	return nil
}

// startAdmin serves /healthz, /readyz and /metrics on AdminListen.
func (cp *ControlPlane) startAdmin(wg *sync.WaitGroup) (*http.Server, error) {
	lis, err := net.Listen("tcp", cp.opts.AdminListen)
	if err != nil {
		return nil, fmt.Errorf("control plane admin listen %s: %w", cp.opts.AdminListen, err)
	}
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok) // serving at all means the configuration is loaded
	if g, isGatherer := cp.opts.Metrics.(prometheus.Gatherer); isGatherer {
		mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	wg.Add(1)
	go func() { defer wg.Done(); _ = srv.Serve(lis) }()
	cp.log.Info("control plane admin serving", "addr", lis.Addr().String())
	return srv, nil
}

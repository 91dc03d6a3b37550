package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the xDS server. They are registered on the Registerer given in
// Options, never on the global one.
type metrics struct {
	nacks         *prometheus.CounterVec // node, type
	resourcesSent *prometheus.CounterVec // type
	removalsSent  *prometheus.CounterVec // type
	responses     *prometheus.CounterVec // type
	streams       prometheus.Gauge
	deferredSends prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrig_xds_nacks_total",
			Help: "Delta xDS responses rejected (NACKed) by a client, per node id and type URL.",
		}, []string{"node", "type"}),
		resourcesSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrig_xds_resources_sent_total",
			Help: "Resources sent (added or changed) on delta xDS streams, per type URL.",
		}, []string{"type"}),
		removalsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrig_xds_removals_sent_total",
			Help: "Resource names sent in removed_resources on delta xDS streams, per type URL.",
		}, []string{"type"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrig_xds_responses_total",
			Help: "Delta xDS responses sent, per type URL.",
		}, []string{"type"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outrig_xds_streams",
			Help: "Open delta xDS streams.",
		}),
		deferredSends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outrig_xds_deferred_sends_total",
			Help: "Responses handed to a goroutine because a stream was too slow to take them at once.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.nacks, m.resourcesSent, m.removalsSent, m.responses, m.streams, m.deferredSends} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register xds metrics: %w", err)
		}
	}
	return m, nil
}

// callbacks observe go-control-plane's delta streams: they remember each
// stream's node (sent only on the first request), and log and count NACKs.
// go-control-plane calls them from the stream goroutines, concurrently.
type callbacks struct {
	log    *slog.Logger
	m      *metrics
	ids    *streamIDs
	closed func(id int64)

	mu    sync.Mutex
	nodes map[int64]string // stream id → node id
}

func newCallbacks(log *slog.Logger, m *metrics, ids *streamIDs, closed func(int64)) *callbacks {
	return &callbacks{log: log, m: m, ids: ids, closed: closed, nodes: map[int64]string{}}
}

var errSotwStream = errors.New("state-of-the-world xDS is not served: use DeltaAggregatedResources")

func (c *callbacks) OnStreamOpen(context.Context, int64, string) error { return errSotwStream }
func (c *callbacks) OnStreamClosed(int64, *core.Node)                  {}
func (c *callbacks) OnStreamRequest(int64, *discovery.DiscoveryRequest) error {
	return errSotwStream
}
func (c *callbacks) OnStreamResponse(context.Context, int64, *discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {
}
func (c *callbacks) OnFetchRequest(context.Context, *discovery.DiscoveryRequest) error {
	return errSotwStream
}
func (c *callbacks) OnFetchResponse(*discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {}

func (c *callbacks) OnDeltaStreamOpen(_ context.Context, id int64, _ string) error {
	c.m.streams.Inc()
	return nil
}

func (c *callbacks) OnDeltaStreamClosed(id int64, node *core.Node) {
	c.m.streams.Dec()
	c.mu.Lock()
	delete(c.nodes, id)
	c.mu.Unlock()
	c.closed(id)
	c.log.Debug("xds stream closed", "stream", id, "node", node.GetId())
}

func (c *callbacks) OnStreamDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) error {
	c.ids.put(id, req)
	c.mu.Lock()
	if req.GetNode() != nil {
		c.nodes[id] = req.GetNode().GetId()
	}
	node := c.nodes[id]
	c.mu.Unlock()
	if detail := req.GetErrorDetail(); detail != nil {
		c.m.nacks.WithLabelValues(node, req.GetTypeUrl()).Inc()
		c.log.Warn("xds NACK", "node", node, "type", req.GetTypeUrl(), "nonce", req.GetResponseNonce(),
			"code", detail.GetCode(), "error", detail.GetMessage())
	}
	return nil
}

func (c *callbacks) OnStreamDeltaResponse(id int64, req *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
	t := resp.GetTypeUrl()
	c.m.responses.WithLabelValues(t).Inc()
	c.m.resourcesSent.WithLabelValues(t).Add(float64(len(resp.GetResources())))
	c.m.removalsSent.WithLabelValues(t).Add(float64(len(resp.GetRemovedResources())))
}

package client

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/outrig/outrig/xds/resource"
)

type eventKind int

const (
	evOpened eventKind = iota
	evResponse
	evClosed
)

// event is posted by a stream goroutine to the run loop.
type event struct {
	kind   eventKind
	stream *adsStream
	st     discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient // evOpened
	resp   *discovery.DeltaDiscoveryResponse
	err    error
}

// adsStream is one attempt at the ADS stream. Its fields belong to run;
// the stream goroutine only reads ctx.
type adsStream struct {
	ctx      context.Context
	id       uint64
	cancel   context.CancelFunc
	st       discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	answered bool // a response arrived: the connection is healthy
	nodeSent bool
}

// run is the client's only mutator of the stream, the cache and the
// Handler's input. It connects, reconnects with backoff, handles responses
// and falls back to the persisted file.
func (c *Client) run() {
	defer close(c.done)
	var fallback <-chan time.Time
	if c.opts.PersistPath != "" {
		t := time.NewTimer(c.opts.InitialTimeout)
		defer t.Stop()
		fallback = t.C
	}
	retry := time.NewTimer(0)
	defer retry.Stop()
	var (
		cur      *adsStream
		nextID   uint64
		attempts int
	)
	for {
		select {
		case <-c.ctx.Done():
			if cur != nil {
				cur.cancel()
			}
			return

		case <-fallback:
			fallback = nil
			if !c.isReady {
				c.loadPersisted()
			}

		case <-retry.C:
			nextID++
			ctx, cancel := context.WithCancel(c.ctx)
			s := &adsStream{id: nextID, ctx: ctx, cancel: cancel}
			c.streams.Add(1)
			go c.runStream(s)
			cur = s

		case <-c.kick:
			if cur != nil && cur.st != nil {
				c.sendPending(cur)
			}

		case ev := <-c.events:
			if ev.stream != cur {
				continue // a stream we gave up on
			}
			switch ev.kind {
			case evOpened:
				cur.st = ev.st
				c.mu.Lock()
				c.stats.Streams++
				c.mu.Unlock()
				c.sendInitial(cur)
			case evResponse:
				if !cur.answered {
					cur.answered = true
					attempts = 0
				}
				c.handleResponse(cur, ev.resp)
			case evClosed:
				cur.cancel()
				c.mu.Lock()
				for _, ts := range c.types {
					ts.stopTimers()
				}
				c.mu.Unlock()
				delay := backoffDelay(c.opts.BackoffBase, c.opts.BackoffMax, attempts)
				attempts++
				c.log.Info("xds stream ended; reconnecting", "error", ev.err, "after", delay)
				cur = nil
				retry.Reset(delay)
			}
		}
	}
}

// backoffDelay is base·1.6^attempt capped at max, with ±20% jitter.
func backoffDelay(base, max time.Duration, attempt int) time.Duration {
	d := float64(base)
	for range attempt {
		d *= 1.6
		if d >= float64(max) {
			d = float64(max)
			break
		}
	}
	d *= 0.8 + 0.4*rand.Float64()
	return time.Duration(d)
}

// runStream opens the stream and forwards what it receives to run.
func (c *Client) runStream(s *adsStream) {
	defer c.streams.Done()
	ctx := s.ctx
	post := func(ev event) bool {
		select {
		case c.events <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	st, err := c.ads.DeltaAggregatedResources(ctx)
	if err != nil {
		post(event{kind: evClosed, stream: s, err: err})
		return
	}
	if !post(event{kind: evOpened, stream: s, st: st}) {
		return
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			post(event{kind: evClosed, stream: s, err: err})
			return
		}
		if !post(event{kind: evResponse, stream: s, resp: resp}) {
			return
		}
	}
}

func (c *Client) send(s *adsStream, req *discovery.DeltaDiscoveryRequest) {
	if !s.nodeSent {
		req.Node = c.node
		s.nodeSent = true
	}
	if err := s.st.Send(req); err != nil {
		// The receive side sees the same failure and ends the stream.
		c.log.Debug("xds send failed", "type", req.GetTypeUrl(), "error", err)
	}
}

// sendInitial subscribes everything on a new stream, with the versions held.
func (c *Client) sendInitial(s *adsStream) {
	var reqs []*discovery.DeltaDiscoveryRequest
	c.mu.Lock()
	for _, t := range resource.AllTypes() {
		ts := c.types[t]
		ts.pending = nil
		names := ts.watchedNames()
		if ts.wildcard {
			names = append([]string{"*"}, names...)
		} else if len(names) == 0 {
			continue
		}
		reqs = append(reqs, &discovery.DeltaDiscoveryRequest{
			TypeUrl:                 t,
			ResourceNamesSubscribe:  names,
			InitialResourceVersions: ts.versions(),
		})
		ts.startTimers(names, c.opts.NotFoundTimeout, c.notFound)
	}
	c.mu.Unlock()
	for _, r := range reqs {
		c.send(s, r)
	}
}

// sendPending subscribes the names watched since the last request.
func (c *Client) sendPending(s *adsStream) {
	var reqs []*discovery.DeltaDiscoveryRequest
	c.mu.Lock()
	for _, t := range resource.AllTypes() {
		ts := c.types[t]
		if len(ts.pending) == 0 {
			continue
		}
		names := ts.pending
		ts.pending = nil
		reqs = append(reqs, &discovery.DeltaDiscoveryRequest{TypeUrl: t, ResourceNamesSubscribe: names})
		ts.startTimers(names, c.opts.NotFoundTimeout, c.notFound)
	}
	c.mu.Unlock()
	for _, r := range reqs {
		c.send(s, r)
	}
}

// notFound is the not-found timer's callback.
func (c *Client) notFound(typeURL, name string, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.types[typeURL].watched[name]
	if !ok || n.timerGen != gen || n.state != unknown {
		return
	}
	n.timer = nil
	n.resolve(absent)
	c.log.Debug("xds resource not found (timer)", "type", typeURL, "name", name)
}

// handleResponse decodes a response, hands its changes to the Handler,
// records what was accepted, ACKs or NACKs, and persists.
func (c *Client) handleResponse(s *adsStream, resp *discovery.DeltaDiscoveryResponse) {
	t := resp.GetTypeUrl()
	c.mu.Lock()
	c.stats.Responses++
	c.stats.Resources += len(resp.GetResources())
	c.stats.Removed += len(resp.GetRemovedResources())
	c.stats.Bytes += proto.Size(resp)
	ts, known := c.types[t]
	if !known {
		c.mu.Unlock()
		c.nack(s, resp, map[string]error{"": fmt.Errorf("type %q was not subscribed", t)})
		return
	}
	rejected := map[string]error{}
	updated := map[string]proto.Message{}
	incoming := map[string]*held{}
	for i, r := range resp.GetResources() {
		name := r.GetName()
		if name == "" {
			rejected[fmt.Sprintf("#%d", i)] = fmt.Errorf("resource has no name")
			continue
		}
		if !ts.subscribed(name) {
			continue // not asked for
		}
		m, err := decode(t, name, r)
		if err != nil {
			rejected[name] = err
			continue
		}
		if h, ok := ts.held[name]; ok && h.version == r.GetVersion() && bytes.Equal(h.raw.GetValue(), r.GetResource().GetValue()) {
			continue // already held
		}
		updated[name] = m
		incoming[name] = &held{version: r.GetVersion(), msg: m, raw: r.GetResource()}
	}
	var removed []string
	for _, name := range resp.GetRemovedResources() {
		if _, ok := ts.held[name]; ok {
			removed = append(removed, name)
		}
	}
	c.mu.Unlock()

	var herrs map[string]error
	if len(updated) > 0 || len(removed) > 0 {
		herrs = c.opts.Handler.Apply(t, updated, removed)
	}

	c.mu.Lock()
	var (
		changed bool
		view    endpointChanges
	)
	var accepted, dropped []string
	for name, h := range incoming {
		if err := herrs[name]; err != nil {
			rejected[name] = err
			continue
		}
		ts.put(name, h)
		view.put(t, name, h.msg)
		c.stats.Applied++
		accepted = append(accepted, name)
	}
	for _, name := range removed {
		if err := herrs[name]; err != nil {
			rejected[name] = err
			continue
		}
		ts.drop(name)
		view.drop(t, name)
		dropped = append(dropped, name)
	}
	changed = len(accepted) > 0 || len(dropped) > 0
	// The view first, then the answers: a waiter woken by a resolution
	// reads the view.
	c.updateEndpoints(view)
	for _, name := range accepted {
		c.resolveHeld(ts, name)
	}
	for _, name := range dropped {
		c.resolveGone(ts, name)
	}
	for _, name := range resp.GetRemovedResources() {
		c.resolveGone(ts, name)
	}
	for name := range rejected {
		// A rejected name the client holds keeps its previous version; one
		// it never held is answered, as not available.
		if n, ok := ts.watched[name]; ok && n.state == unknown {
			n.resolve(absent)
		}
		c.resolveGone(ts, resource.CollectionOf(name))
	}
	ts.markSynced()
	if len(rejected) > 0 {
		c.stats.Nacks++
	}
	c.mu.Unlock()

	if len(rejected) > 0 {
		c.nack(s, resp, rejected)
	} else {
		c.send(s, &discovery.DeltaDiscoveryRequest{TypeUrl: t, ResponseNonce: resp.GetNonce()})
	}
	if changed {
		c.persistAfter(ts.wildcard)
	}
	c.checkReady()
}

// resolveHeld marks name, and its collection, as existing. Must hold c.mu.
func (c *Client) resolveHeld(ts *typeState, name string) {
	if n, ok := ts.watched[name]; ok {
		n.resolve(exists)
	}
	if coll := resource.CollectionOf(name); coll != "" {
		if n, ok := ts.watched[coll]; ok {
			n.resolve(exists)
		}
	}
}

// resolveGone re-examines a watched name (or collection), or the collection
// of a removed member, after a removal or a rejection: what the client no
// longer holds anything of is absent. Must hold c.mu.
func (c *Client) resolveGone(ts *typeState, name string) {
	if name == "" {
		return
	}
	if coll := resource.CollectionOf(name); coll != "" {
		c.resolveGone(ts, coll)
	}
	n, ok := ts.watched[name]
	if !ok || ts.has(name) {
		return
	}
	if n.state != absent || !isClosed(n.resolved) {
		n.resolve(absent)
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (c *Client) nack(s *adsStream, resp *discovery.DeltaDiscoveryResponse, rejected map[string]error) {
	names := make([]string, 0, len(rejected))
	for name := range rejected {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, name := range names {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %v", name, rejected[name])
	}
	c.log.Warn("xds NACK", "type", resp.GetTypeUrl(), "nonce", resp.GetNonce(), "rejected", b.String())
	c.send(s, &discovery.DeltaDiscoveryRequest{
		TypeUrl:       resp.GetTypeUrl(),
		ResponseNonce: resp.GetNonce(),
		ErrorDetail:   &status.Status{Code: int32(codes.InvalidArgument), Message: b.String()},
	})
}

// decode unwraps one resource of a typeURL response and checks that it is
// what it claims to be.
func decode(typeURL, name string, r *discovery.Resource) (proto.Message, error) {
	a := r.GetResource()
	if a == nil {
		return nil, fmt.Errorf("resource body is missing")
	}
	if a.GetTypeUrl() != typeURL {
		return nil, fmt.Errorf("resource is a %s in a %s response", a.GetTypeUrl(), typeURL)
	}
	m, err := resource.Decode(a)
	if err != nil {
		return nil, err
	}
	if got := resource.Name(m); got != name {
		return nil, fmt.Errorf("resource names itself %q", got)
	}
	return m, nil
}

// checkReady closes Ready once every wildcard type was answered.
func (c *Client) checkReady() {
	if c.isReady {
		return
	}
	c.mu.Lock()
	for _, t := range resource.WildcardTypes() {
		if !c.types[t].isSynced() {
			c.mu.Unlock()
			return
		}
	}
	c.mu.Unlock()
	c.markReady()
}

func (c *Client) markReady() {
	if !c.isReady {
		c.isReady = true
		close(c.ready)
	}
}

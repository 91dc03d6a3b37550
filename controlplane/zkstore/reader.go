package zkstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/xds/resource"
)

// seqSeparator separates an instance node's escaped instance id from the
// sequence ZooKeeper appends. escapeName never leaves it in an id.
const seqSeparator = "~"

// parseChild splits an instance node name "<escaped id>~<sequence>".
func parseChild(child string) (instance string, seq int64, ok bool) {
	i := strings.LastIndex(child, seqSeparator)
	if i <= 0 {
		return "", 0, false
	}
	seq, err := strconv.ParseInt(child[i+1:], 10, 64)
	if err != nil {
		return "", 0, false
	}
	instance, err = unescapeName(child[:i])
	if err != nil {
		return "", 0, false
	}
	return instance, seq, true
}

// PublishFunc receives instance changes: the Endpoints that appeared or
// changed (resource name → Endpoint) and the names of those gone, as
// xds/server.UpdateResources(resource.EndpointType, ...) takes them.
type PublishFunc func(upserts map[string]*configv1.Endpoint, removed []string)

// InstanceReader follows every instance in the store (written by any
// replica) and publishes their changes, one Endpoint per instance.
//
// Lifecycle: InstanceReader, then Run in one goroutine. publish is called
// from Run's goroutine and from grace timers, never concurrently.
type InstanceReader struct {
	s       *Store
	grace   time.Duration
	publish PublishFunc
	log     *slog.Logger

	mu        sync.Mutex                  // serialises publications and guards what follows
	apps      map[string]map[string]*node // app id → child name → node
	published map[string]*published       // resource name → what was published
}

type node struct {
	instance string
	seq      int64
	ep       *configv1.Endpoint
	version  string
	owner    int64 // ZooKeeper session that wrote it
}

type published struct {
	version string
	owner   int64
	removal *time.Timer // a removal waiting for the grace period
}

// InstanceReader returns a reader that publishes to publish. grace is how
// long an instance whose writer died (its session ended, not a
// deregistration or an expiry) stays published, waiting for it to be
// written again by another replica.
func (s *Store) InstanceReader(grace time.Duration, publish PublishFunc) *InstanceReader {
	return &InstanceReader{s: s, grace: grace, publish: publish, log: s.log,
		apps: map[string]map[string]*node{}, published: map[string]*published{}}
}

// Run follows the store until ctx ends. ready (if not nil) is called once
// every instance present at start was read and published.
func (r *InstanceReader) Run(ctx context.Context, ready func()) {
	w := newWatchSet(ctx)
	defer w.stop()
	defer r.stopTimers()
	first := true
	var pending map[string]bool // app paths to read again; nil: everything
	for ctx.Err() == nil {
		failed, err := r.pass(w, pending)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("reading instances from the store failed; retrying", "error", err)
			pending = failed
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		if first {
			first = false
			if ready != nil {
				ready()
			}
		}
		fired, ok := w.take()
		if !ok {
			return
		}
		pending = map[string]bool{}
		for _, p := range fired {
			pending[p] = true
		}
	}
}

// pass reads the apps whose paths are in pending (all when nil; the list
// of apps when the instances folder itself is in it) and publishes what
// changed. It returns the paths still to read after an error.
func (r *InstanceReader) pass(w *watchSet, pending map[string]bool) (map[string]bool, error) {
	s := r.s
	todo := map[string]bool{}
	if pending == nil || pending[s.instancesPath()] {
		children, err := w.armChildren(s.conn, s.instancesPath())
		if err != nil {
			return pending, fmt.Errorf("list apps: %w", err)
		}
		listed := map[string]bool{}
		for _, child := range children {
			app, err := unescapeName(child)
			if err != nil {
				continue
			}
			listed[app] = true
			if _, known := r.apps[app]; !known || pending == nil {
				todo[app] = true
			}
		}
		for app := range r.apps {
			if !listed[app] {
				todo[app] = true // its container is gone: so are its instances
			}
		}
	}
	for p := range pending {
		if p == s.instancesPath() {
			continue
		}
		if app, err := unescapeName(strings.TrimPrefix(p, s.instancesPath()+"/")); err == nil {
			todo[app] = true
		}
	}
	for app := range todo {
		if err := r.readApp(w, app); err != nil {
			left := map[string]bool{}
			for a := range todo {
				left[s.appPath(a)] = true
			}
			return left, err
		}
	}
	return nil, nil
}

// readApp lists an app's instance nodes, reads the new ones and publishes
// the app's changes.
func (r *InstanceReader) readApp(w *watchSet, app string) error {
	s := r.s
	children, err := w.armChildren(s.conn, s.appPath(app))
	if errors.Is(err, zk.ErrNoNode) {
		children, err = nil, nil
	}
	if err != nil {
		return fmt.Errorf("list %s: %w", s.appPath(app), err)
	}
	old := r.apps[app]
	nodes := make(map[string]*node, len(children))
	var fresh []string
	for _, child := range children {
		if n, ok := old[child]; ok {
			nodes[child] = n
			continue
		}
		fresh = append(fresh, child)
	}
	read, err := r.readNodes(app, fresh)
	if err != nil {
		return err
	}
	for child, n := range read {
		nodes[child] = n
	}
	if len(nodes) == 0 {
		delete(r.apps, app)
	} else {
		r.apps[app] = nodes
	}
	r.reconcile(app, old, nodes)
	return nil
}

// readNodes reads instance nodes, 16 at a time. Nodes gone meanwhile and
// nodes that do not decode are left out (the latter logged).
func (r *InstanceReader) readNodes(app string, children []string) (map[string]*node, error) {
	out := make(map[string]*node, len(children))
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, 16)
	)
	for _, child := range children {
		inst, seq, ok := parseChild(child)
		if !ok {
			r.log.Warn("skipping an instance node with a bad name", "app", app, "node", child)
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p := r.s.appPath(app) + "/" + child
			data, st, err := r.s.conn.Get(p)
			if errors.Is(err, zk.ErrNoNode) {
				return
			}
			if err != nil {
				mu.Lock()
				firstErr = cmpErr(firstErr, fmt.Errorf("read %s: %w", p, err))
				mu.Unlock()
				return
			}
			ep, err := decodeEndpoint(data)
			if err == nil && (ep.GetAppId() != app || ep.GetInstanceId() != inst) {
				err = fmt.Errorf("node holds %s", resource.Name(ep))
			}
			var version string
			if err == nil {
				version, err = resource.Version(ep)
			}
			if err != nil {
				r.log.Error("skipping an instance node that does not decode", "node", p, "error", err)
				return
			}
			mu.Lock()
			out[child] = &node{instance: inst, seq: seq, ep: ep, version: version, owner: st.EphemeralOwner}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out, firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// reconcile publishes the changes of app between its old and new nodes:
// per instance, the node with the highest sequence wins.
func (r *InstanceReader) reconcile(app string, old, nodes map[string]*node) {
	winners := map[string]*node{}
	for _, n := range nodes {
		if w, ok := winners[n.instance]; !ok || n.seq > w.seq {
			winners[n.instance] = n
		}
	}
	gone := map[string]bool{}
	for _, n := range old {
		if _, ok := winners[n.instance]; !ok {
			gone[n.instance] = true
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	upserts := map[string]*configv1.Endpoint{}
	var removed []string
	for inst, n := range winners {
		name := resource.EndpointName(app, inst)
		p := r.published[name]
		if p != nil && p.removal != nil {
			p.removal.Stop()
			p.removal = nil
		}
		if p != nil && p.version == n.version {
			p.owner = n.owner
			continue
		}
		r.published[name] = &published{version: n.version, owner: n.owner}
		upserts[name] = n.ep
	}
	for inst := range gone {
		name := resource.EndpointName(app, inst)
		p := r.published[name]
		if p == nil || p.removal != nil {
			continue
		}
		if r.grace > 0 && !r.replicaAlive(p.owner) {
			// Its replica died: the sidecar is re-registering elsewhere.
			r.log.Info("instance's replica is gone; keeping it for the grace period", "instance", name, "grace", r.grace)
			p.removal = time.AfterFunc(r.grace, func() { r.expire(name, p) })
			continue
		}
		delete(r.published, name)
		removed = append(removed, name)
	}
	if len(upserts) > 0 || len(removed) > 0 {
		r.publish(upserts, removed)
	}
}

// expire removes an instance whose grace period ended without it being
// written again.
func (r *InstanceReader) expire(name string, p *published) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.published[name] != p || p.removal == nil {
		return // written again meanwhile
	}
	delete(r.published, name)
	r.log.Info("instance not written again within the grace period; removed", "instance", name)
	r.publish(nil, []string{name})
}

// replicaAlive reports whether the replica of session owner still has its
// node. When ZooKeeper cannot tell, the replica counts as gone: keeping an
// instance for the grace period is the safe side for its callers.
func (r *InstanceReader) replicaAlive(owner int64) bool {
	if owner == 0 {
		return true
	}
	ok, _, err := r.s.conn.Exists(r.s.replicaPath(owner))
	return err == nil && ok
}

func (r *InstanceReader) stopTimers() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.published {
		if p.removal != nil {
			p.removal.Stop()
			p.removal = nil
		}
	}
}

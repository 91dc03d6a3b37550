package zkstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/xds/resource"
)

type instanceKey struct{ app, instance string }

// InstanceWriter writes the instances whose leases this replica holds into
// the store, as ephemeral sequential nodes of its session. It never waits
// on ZooKeeper in the caller's goroutine: Publish and Deregister record
// what is wanted and Run writes it, retrying while ZooKeeper is
// unreachable, and writing everything again in a new session (the old
// session's nodes vanished with it).
//
// Lifecycle: InstanceWriter, then Run in one goroutine until its context
// ends. Publish and Deregister are safe for concurrent use.
type InstanceWriter struct {
	s    *Store
	addr string
	log  *slog.Logger
	kick chan struct{} // capacity 1

	mu      sync.Mutex
	desired map[instanceKey]*wanted
	dirty   map[instanceKey]struct{}
	purge   map[instanceKey]struct{}
	idle    chan struct{} // closed when nothing is left to write; replaced when something is

	// Run's own state.
	session int64
	own     map[instanceKey]ownNode
}

type wanted struct {
	data    []byte
	version string
}

type ownNode struct{ path, version string }

// InstanceWriter returns the writer of this replica's instances; addr is
// written in the replica's node (informative).
func (s *Store) InstanceWriter(addr string) *InstanceWriter {
	idle := make(chan struct{})
	close(idle)
	return &InstanceWriter{
		s: s, addr: addr, log: s.log, kick: make(chan struct{}, 1),
		desired: map[instanceKey]*wanted{}, dirty: map[instanceKey]struct{}{}, purge: map[instanceKey]struct{}{},
		idle: idle, own: map[instanceKey]ownNode{},
	}
}

// Publish records instances registered or changed (resource name →
// Endpoint) and instances this replica no longer holds (expired or
// deregistered), as xds/registry's OnChange hands them over.
func (w *InstanceWriter) Publish(upserts map[string]*configv1.Endpoint, removed []string) {
	w.mu.Lock()
	for _, ep := range upserts {
		b, err := resource.Marshal(ep)
		if err != nil {
			w.log.Error("cannot encode an instance for the store", "instance", resource.Name(ep), "error", err)
			continue
		}
		k := instanceKey{ep.GetAppId(), ep.GetInstanceId()}
		w.desired[k] = &wanted{data: b, version: resource.VersionOf(b)}
		w.markLocked(k)
	}
	for _, name := range removed {
		app, inst, ok := resource.SplitEndpointName(name)
		if !ok {
			continue
		}
		k := instanceKey{app, inst}
		delete(w.desired, k)
		w.markLocked(k)
	}
	w.mu.Unlock()
	w.wake()
}

// Deregister removes the instance from the store whichever replica wrote
// it: a sidecar deregisters through the replica it is connected to, which
// may not be the one that holds an older lease of it.
func (w *InstanceWriter) Deregister(appID, instanceID string) {
	w.mu.Lock()
	w.purge[instanceKey{appID, instanceID}] = struct{}{}
	w.busyLocked()
	w.mu.Unlock()
	w.wake()
}

// Idle returns a channel closed once everything recorded so far is
// written (for tests and orderly shutdown).
func (w *InstanceWriter) Idle() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.idle
}

func (w *InstanceWriter) markLocked(k instanceKey) {
	w.dirty[k] = struct{}{}
	w.busyLocked()
}

func (w *InstanceWriter) busyLocked() {
	select {
	case <-w.idle:
		w.idle = make(chan struct{})
	default:
	}
}

func (w *InstanceWriter) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run writes until ctx ends.
func (w *InstanceWriter) Run(ctx context.Context) {
	sessions := w.s.onSession()
	failures := 0
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		if err := w.write(); err != nil {
			if ctx.Err() != nil {
				return
			}
			d := min(200*time.Millisecond<<min(failures, 5), 5*time.Second)
			failures++
			w.log.Warn("writing instances to the store failed; retrying", "error", err, "after", d)
			retry.Reset(d)
		} else {
			failures = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-sessions:
		case <-retry.C:
		}
	}
}

var errNoSession = errors.New("no ZooKeeper session")

// write brings the store in line with what is recorded.
func (w *InstanceWriter) write() error {
	sess := w.s.SessionID()
	if sess == 0 {
		return errNoSession
	}
	if sess != w.session {
		// A new session: the nodes of the old one are gone (or going).
		if err := w.s.RegisterReplica(w.addr); err != nil {
			return err
		}
		w.mu.Lock()
		if w.session != 0 {
			w.log.Info("new ZooKeeper session: writing this replica's instances again", "instances", len(w.desired))
		}
		w.session = sess
		clear(w.own)
		for k := range w.desired {
			w.markLocked(k)
		}
		w.mu.Unlock()
	}
	w.mu.Lock()
	purge := w.purge
	w.purge = map[instanceKey]struct{}{}
	w.mu.Unlock()
	for k := range purge {
		if err := w.purgeInstance(k); err != nil {
			w.mu.Lock()
			w.purge[k] = struct{}{}
			w.mu.Unlock()
			return err
		}
	}
	for {
		w.mu.Lock()
		var (
			k     instanceKey
			found bool
		)
		for k = range w.dirty {
			found = true
			break
		}
		if !found {
			if len(w.purge) == 0 {
				select {
				case <-w.idle:
				default:
					close(w.idle)
				}
			}
			w.mu.Unlock()
			return nil
		}
		delete(w.dirty, k)
		want := w.desired[k]
		w.mu.Unlock()
		if err := w.writeInstance(k, want); err != nil {
			w.mu.Lock()
			w.dirty[k] = struct{}{}
			w.mu.Unlock()
			return err
		}
	}
}

// writeInstance makes k's node in this session hold want (nil: no node).
func (w *InstanceWriter) writeInstance(k instanceKey, want *wanted) error {
	cur, has := w.own[k]
	if want == nil {
		if has {
			if err := w.s.conn.Delete(cur.path, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
				return fmt.Errorf("store: delete %s: %w", cur.path, err)
			}
			delete(w.own, k)
		}
		return nil
	}
	if has && cur.version == want.version {
		return nil
	}
	prefix := w.s.appPath(k.app) + "/" + escapeName(k.instance) + seqSeparator
	created, err := w.s.conn.Create(prefix, want.data, zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
	if errors.Is(err, zk.ErrNoNode) {
		// The app's container is missing (first instance, or it was
		// reclaimed when empty): create it and try again.
		if _, cerr := w.s.conn.CreateContainer(w.s.appPath(k.app), nil, zk.FlagTTL, zk.WorldACL(zk.PermAll)); cerr != nil && !errors.Is(cerr, zk.ErrNodeExists) {
			return fmt.Errorf("store: create %s: %w", w.s.appPath(k.app), cerr)
		}
		created, err = w.s.conn.Create(prefix, want.data, zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
	}
	if err != nil {
		return fmt.Errorf("store: write instance %s: %w", resource.EndpointName(k.app, k.instance), err)
	}
	w.own[k] = ownNode{path: created, version: want.version}
	if has {
		if err := w.s.conn.Delete(cur.path, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			w.log.Warn("could not delete the previous node of an instance", "node", cur.path, "error", err)
		}
	}
	return nil
}

// purgeInstance deletes every node of k, whoever wrote it.
func (w *InstanceWriter) purgeInstance(k instanceKey) error {
	app := w.s.appPath(k.app)
	children, _, err := w.s.conn.Children(app)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: list %s: %w", app, err)
	}
	for _, child := range children {
		inst, _, ok := parseChild(child)
		if !ok || inst != k.instance {
			continue
		}
		if err := w.s.conn.Delete(app+"/"+child, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return fmt.Errorf("store: delete %s/%s: %w", app, child, err)
		}
	}
	delete(w.own, k)
	w.mu.Lock()
	if w.desired[k] != nil { // registered here again since: write it anew
		w.markLocked(k)
	}
	w.mu.Unlock()
	return nil
}

// Endpoint decodes an instance node's data.
func decodeEndpoint(data []byte) (*configv1.Endpoint, error) {
	ep := &configv1.Endpoint{}
	if err := proto.Unmarshal(data, ep); err != nil {
		return nil, err
	}
	return ep, nil
}

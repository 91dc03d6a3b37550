package zkstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/config"
	"github.com/outrig/outrig/xds/resource"
)

// kind is one configuration type in the store.
type kind struct {
	dir      string
	newMsg   func() proto.Message
	validate func(proto.Message) error
}

// configKinds returns the configuration types, in the order their nodes
// are written and read.
func configKinds() []kind {
	return []kind{
		{"components", func() proto.Message { return &configv1.Component{} },
			func(m proto.Message) error { return config.ValidateComponent(m.(*configv1.Component)) }},
		{"policies", func() proto.Message { return &configv1.Policy{} },
			func(m proto.Message) error { return config.ValidatePolicy(m.(*configv1.Policy)) }},
		{"subscriptions", func() proto.Message { return &configv1.Subscription{} },
			func(m proto.Message) error { return config.ValidateSubscription(m.(*configv1.Subscription)) }},
	}
}

// objects returns the objects of kind k in set, by name.
func objects(set *config.Set, k kind) map[string]proto.Message {
	out := map[string]proto.Message{}
	switch k.dir {
	case "components":
		for n, m := range set.Components {
			out[n] = m
		}
	case "policies":
		for n, m := range set.Policies {
			out[n] = m
		}
	case "subscriptions":
		for n, m := range set.Subscriptions {
			out[n] = m
		}
	}
	return out
}

func put(set *config.Set, k kind, name string, m proto.Message) {
	switch k.dir {
	case "components":
		set.Components[name] = m.(*configv1.Component)
	case "policies":
		set.Policies[name] = m.(*configv1.Policy)
	case "subscriptions":
		set.Subscriptions[name] = m.(*configv1.Subscription)
	}
}

func emptySet() *config.Set {
	return &config.Set{
		Components:    map[string]*configv1.Component{},
		Subscriptions: map[string]*configv1.Subscription{},
		Policies:      map[string]*configv1.Policy{},
	}
}

// LoadResult counts what LoadConfig changed.
type LoadResult struct {
	Created, Updated, Deleted, Unchanged int
}

// Limits of one ZooKeeper transaction (its default jute.maxbuffer is 1 MiB).
const (
	maxOpsPerMulti   = 500
	maxBytesPerMulti = 512 << 10
)

// LoadConfig makes set the store's configuration: it creates, updates and
// deletes configuration nodes so that they hold exactly set's objects, then
// sets the generation, which is what replicas watch. Each node is written
// atomically, with a version check (a concurrent loader makes this one fail
// rather than interleave); a set that fits in one transaction (512 KiB,
// 500 changes) is written in one, so replicas see all of it or none of it.
// Loading the same set again changes nothing.
func (s *Store) LoadConfig(set *config.Set) (LoadResult, error) {
	var (
		res LoadResult
		ops []any
		sum = sha256.New()
	)
	for _, k := range configKinds() {
		want := objects(set, k)
		names := make([]string, 0, len(want))
		for n := range want {
			names = append(names, n)
		}
		sort.Strings(names)
		children, _, err := s.conn.Children(s.kindPath(k))
		if err != nil {
			return res, fmt.Errorf("store: list %s: %w", k.dir, err)
		}
		have := map[string]bool{}
		for _, child := range children {
			name, err := unescapeName(child)
			if err != nil {
				return res, err
			}
			have[name] = true
			p := s.kindPath(k) + "/" + child
			data, st, err := s.conn.Get(p)
			if err != nil {
				return res, fmt.Errorf("store: read %s: %w", p, err)
			}
			m, keep := want[name]
			if !keep {
				ops = append(ops, &zk.DeleteRequest{Path: p, Version: st.Version})
				res.Deleted++
				continue
			}
			b, err := resource.Marshal(m)
			if err != nil {
				return res, err
			}
			if bytes.Equal(b, data) {
				res.Unchanged++
				continue
			}
			ops = append(ops, &zk.SetDataRequest{Path: p, Data: b, Version: st.Version})
			res.Updated++
		}
		for _, name := range names {
			b, err := resource.Marshal(want[name])
			if err != nil {
				return res, err
			}
			fmt.Fprintf(sum, "%s\x00%s\x00%d\x00", k.dir, name, len(b))
			sum.Write(b)
			if have[name] {
				continue
			}
			ops = append(ops, &zk.CreateRequest{Path: s.kindPath(k) + "/" + escapeName(name), Data: b, Acl: zk.WorldACL(zk.PermAll)})
			res.Created++
		}
	}
	gen := []byte(hex.EncodeToString(sum.Sum(nil)[:16]))
	cur, _, err := s.conn.Get(s.configPath())
	if err != nil {
		return res, fmt.Errorf("store: read generation: %w", err)
	}
	if len(ops) == 0 && bytes.Equal(cur, gen) {
		return res, nil
	}
	ops = append(ops, &zk.SetDataRequest{Path: s.configPath(), Data: gen, Version: -1})
	for len(ops) > 0 {
		n, size := 0, 0
		for n < len(ops) && n < maxOpsPerMulti {
			size += opSize(ops[n])
			if n > 0 && size > maxBytesPerMulti {
				break
			}
			n++
		}
		resps, err := s.conn.Multi(ops[:n]...)
		if err != nil {
			for i, r := range resps {
				if r.Error != nil {
					return res, fmt.Errorf("store: write %s: %w (a concurrent load? run it again)", opPath(ops[i]), r.Error)
				}
			}
			return res, fmt.Errorf("store: write configuration: %w", err)
		}
		ops = ops[n:]
	}
	return res, nil
}

func opSize(op any) int {
	switch o := op.(type) {
	case *zk.CreateRequest:
		return len(o.Path) + len(o.Data) + 64
	case *zk.SetDataRequest:
		return len(o.Path) + len(o.Data) + 64
	case *zk.DeleteRequest:
		return len(o.Path) + 64
	}
	return 64
}

func opPath(op any) string {
	switch o := op.(type) {
	case *zk.CreateRequest:
		return o.Path
	case *zk.SetDataRequest:
		return o.Path
	case *zk.DeleteRequest:
		return o.Path
	}
	return "?"
}

// ConfigReader reads the configuration from the store and follows its
// changes. Objects that do not decode or validate (written by hand rather
// than by LoadConfig) are logged and replaced by their last good version,
// or left out. Not safe for concurrent use: one goroutine runs Read, then
// Watch.
type ConfigReader struct {
	s        *Store
	lastGood map[string]proto.Message // kind dir + "/" + name → object
}

// ConfigReader returns a reader of the store's configuration.
func (s *Store) ConfigReader() *ConfigReader {
	return &ConfigReader{s: s, lastGood: map[string]proto.Message{}}
}

// Read returns the configuration as it is now.
func (r *ConfigReader) Read() (*config.Set, error) {
	return r.read(nil)
}

// Watch calls publish with the configuration after every change of the
// generation or of the set of configuration nodes, until ctx ends. It
// retries reads that fail (ZooKeeper unreachable) every second; meanwhile
// the last configuration keeps serving.
func (r *ConfigReader) Watch(ctx context.Context, publish func(*config.Set)) {
	w := newWatchSet(ctx)
	defer w.stop()
	for ctx.Err() == nil {
		set, err := r.read(w)
		if err != nil {
			if ctx.Err() == nil {
				r.s.log.Warn("reading the configuration from the store failed; retrying", "error", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		publish(set)
		if !w.wait() {
			return
		}
	}
}

// read reads every configuration node; with w, it (re-)arms the watches
// of the generation and of each kind's children.
func (r *ConfigReader) read(w *watchSet) (*config.Set, error) {
	s := r.s
	if w != nil {
		if err := w.armData(s.conn, s.configPath()); err != nil {
			return nil, err
		}
	}
	set := emptySet()
	for _, k := range configKinds() {
		var (
			children []string
			err      error
		)
		if w != nil {
			children, err = w.armChildren(s.conn, s.kindPath(k))
		} else {
			children, _, err = s.conn.Children(s.kindPath(k))
		}
		if err != nil {
			return nil, fmt.Errorf("store: list %s: %w", k.dir, err)
		}
		for _, child := range children {
			name, err := unescapeName(child)
			if err != nil {
				s.log.Error("skipping a configuration node with a bad name", "kind", k.dir, "node", child, "error", err)
				continue
			}
			p := s.kindPath(k) + "/" + child
			data, _, err := s.conn.Get(p)
			if errors.Is(err, zk.ErrNoNode) {
				continue // deleted since the listing
			}
			if err != nil {
				return nil, fmt.Errorf("store: read %s: %w", p, err)
			}
			m := k.newMsg()
			err = proto.Unmarshal(data, m)
			if err == nil && resource.Name(m) != name {
				err = fmt.Errorf("object names itself %q", resource.Name(m))
			}
			if err == nil {
				err = k.validate(m)
			}
			key := k.dir + "/" + name
			if err != nil {
				s.log.Error("configuration node rejected; its last good version keeps serving", "node", p, "error", err)
				if good, ok := r.lastGood[key]; ok {
					put(set, k, name, good)
				}
				continue
			}
			r.lastGood[key] = m
			put(set, k, name, m)
		}
	}
	return set, nil
}

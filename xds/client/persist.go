package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/outrig/outrig/xds/resource"
)

// The persisted file: a magic line, then one length-delimited
// DeltaDiscoveryResponse per type holding every accepted resource of that
// type with its version. It is replaced atomically (temp file, fsync,
// rename), so a crash leaves either the old or the new file.
var persistMagic = []byte("outrig-xds-cache v1\n")

// persistAfter persists at once after a change of a wildcard type
// (configuration), or within PersistDelay after a change of named
// resources only (endpoints), coalescing a burst into one write.
func (c *Client) persistAfter(wildcard bool) {
	if c.opts.PersistPath == "" {
		return
	}
	if wildcard {
		c.persist()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.persistTimer != nil || c.ctx.Err() != nil {
		return
	}
	c.persistTimer = time.AfterFunc(c.opts.PersistDelay, func() {
		c.mu.Lock()
		c.persistTimer = nil
		c.mu.Unlock()
		c.persist()
	})
}

// persist writes the accepted resources to opts.PersistPath. Writes are
// serialised, each of a snapshot taken under the write lock, so the file
// always ends with the latest state.
func (c *Client) persist() {
	if c.opts.PersistPath == "" {
		return
	}
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	var snap []*discovery.DeltaDiscoveryResponse
	c.mu.Lock()
	for _, t := range resource.AllTypes() {
		ts := c.types[t]
		if len(ts.held) == 0 {
			continue
		}
		r := &discovery.DeltaDiscoveryResponse{TypeUrl: t}
		for name, h := range ts.held {
			r.Resources = append(r.Resources, &discovery.Resource{Name: name, Version: h.version, Resource: h.raw})
		}
		snap = append(snap, r)
	}
	c.mu.Unlock()
	if err := writePersisted(c.opts.PersistPath, snap); err != nil {
		c.log.Error("persisting xds resources failed", "path", c.opts.PersistPath, "error", err)
	}
}

func writePersisted(path string, snap []*discovery.DeltaDiscoveryResponse) error {
	var buf bytes.Buffer
	buf.Write(persistMagic)
	for _, r := range snap {
		if _, err := protodelim.MarshalTo(&buf, r); err != nil {
			return fmt.Errorf("encode %s: %w", r.GetTypeUrl(), err)
		}
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readPersisted returns the responses stored at path.
func readPersisted(path string) ([]*discovery.DeltaDiscoveryResponse, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	magic := make([]byte, len(persistMagic))
	if _, err := io.ReadFull(r, magic); err != nil || !bytes.Equal(magic, persistMagic) {
		return nil, fmt.Errorf("%s: not an outrig xds cache file", path)
	}
	var out []*discovery.DeltaDiscoveryResponse
	for {
		m := &discovery.DeltaDiscoveryResponse{}
		err := protodelim.UnmarshalFrom(r, m)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, m)
	}
}

// loadPersisted hands the persisted resources to the Handler as the
// initial configuration, for the types and names the control plane has not
// answered yet. Called by run when the control plane was not reached in
// time.
func (c *Client) loadPersisted() {
	snap, err := readPersisted(c.opts.PersistPath)
	if errors.Is(err, fs.ErrNotExist) {
		c.log.Info("control plane not reached and no persisted configuration yet", "path", c.opts.PersistPath)
		return
	}
	if err != nil {
		c.log.Error("loading persisted xds resources failed", "error", err)
		return
	}
	byType := map[string]*discovery.DeltaDiscoveryResponse{}
	for _, r := range snap {
		byType[r.GetTypeUrl()] = r
	}
	loaded := 0
	for _, t := range resource.AllTypes() {
		r := byType[t]
		if r == nil {
			continue
		}
		c.mu.Lock()
		ts := c.types[t]
		if ts.wildcard && ts.isSynced() {
			c.mu.Unlock()
			continue // the control plane answered this type already
		}
		updated := map[string]proto.Message{}
		incoming := map[string]*held{}
		for _, res := range r.GetResources() {
			if _, ok := ts.held[res.GetName()]; ok {
				continue
			}
			m, err := decode(t, res.GetName(), res)
			if err != nil {
				c.log.Warn("skipping persisted resource", "type", t, "name", res.GetName(), "error", err)
				continue
			}
			updated[res.GetName()] = m
			incoming[res.GetName()] = &held{version: res.GetVersion(), msg: m, raw: res.GetResource()}
		}
		c.mu.Unlock()
		if len(updated) == 0 {
			continue
		}
		herrs := c.opts.Handler.Apply(t, updated, nil)
		var view endpointChanges
		c.mu.Lock()
		for name, h := range incoming {
			if err := herrs[name]; err != nil {
				c.log.Warn("persisted resource rejected", "type", t, "name", name, "error", err)
				continue
			}
			ts.put(name, h)
			view.put(t, name, h.msg)
			loaded++
			if !ts.wildcard {
				// Keep it fresh: subscribe to it (or to its collection)
				// like any watched name.
				if coll := resource.CollectionOf(name); coll != "" && t == resource.EndpointType {
					ts.watch(coll)
				} else {
					ts.watch(name)
				}
			}
		}
		c.updateEndpoints(view) // before the answers, as in handleResponse
		for name := range incoming {
			if _, ok := ts.held[name]; ok {
				c.resolveHeld(ts, name)
			}
		}
		c.mu.Unlock()
	}
	c.log.Warn("control plane not reached; serving the persisted configuration", "path", c.opts.PersistPath, "resources", loaded)
	c.markReady()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

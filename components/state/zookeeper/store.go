// Package zookeeper is Outrig's native state.zookeeper component, on
// go-zookeeper/zk.
//
// It replaces components-contrib's state.zookeeper (v1.16.0), which the
// conformance suite (conformance/state_test.go) found unusable: it creates
// znodes without an ACL, so the server refuses every new key ("invalid ACL
// specified"); its keys are not valid znode paths unless keyPrefixPath is
// set; an ETag it cannot parse silently becomes "any version" (so a bogus
// ETag always wins); a write with an ETag to a missing key creates it; and
// Close leaks the session.
//
// Here every key is one znode under keyPrefixPath (created at Init when
// missing), named by nodeName so that any key — '/', emoji and all — is
// storable. The ETag is the znode's mzxid, the cluster-wide id of its last
// change, so it is never reused, not even by a node deleted and created
// again. Transactions use ZooKeeper's multi (atomic). There is no TTL (TTL
// nodes need the server's extendedTypesEnabled). A value is limited by the
// server's jute.maxbuffer (default 1 MiB - 1 byte for the whole request);
// larger writes are refused before they are sent, with INVALID_ARGUMENT.
//
// ZooKeeper's client has no per-call context: calls wait on the session.
// A call made while the session is not connected fails at once with
// UNAVAILABLE; a call in flight stops waiting at its context's deadline.
//
// A Store is safe for concurrent use after Init; Close ends the session.
package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/dapr/components-contrib/metadata"
	cstate "github.com/dapr/components-contrib/state"
	"github.com/dapr/kit/logger"
	"github.com/go-zookeeper/zk"

	"github.com/outrig/outrig/errkind"
)

// Store is the state.zookeeper component.
type Store struct {
	cstate.BulkStore // parallel single-key calls

	log  logger.Logger
	conn *zk.Conn
	set  settings
}

// New returns an uninitialised store (the component factory).
func New(log logger.Logger) cstate.Store {
	s := &Store{log: log}
	s.BulkStore = cstate.NewDefaultBulkStore(s)
	return s
}

var acl = zk.WorldACL(zk.PermAll)

// zkLogger sends the client's chatter (connects, reconnects) to debug.
type zkLogger struct{ log logger.Logger }

func (l zkLogger) Printf(format string, args ...any) { l.log.Debugf(format, args...) }

// Init connects, waits for a session within ctx and creates keyPrefixPath.
func (s *Store) Init(ctx context.Context, md cstate.Metadata) error {
	set, err := parseMetadata(md.Properties)
	if err != nil {
		return err
	}
	s.set = set
	conn, _, err := zk.Connect(set.servers, set.sessionTimeout,
		zk.WithMaxBufferSize(set.maxBufferSize), zk.WithMaxConnBufferSize(set.maxConnBufferSize),
		zk.WithLogger(zkLogger{s.log}))
	if err != nil {
		return fmt.Errorf("zookeeper %v: %w", set.servers, err)
	}
	s.conn = conn
	for conn.State() != zk.StateHasSession {
		select {
		case <-ctx.Done():
			conn.Close()
			return fmt.Errorf("zookeeper %v: no session (state %s): %w", set.servers, conn.State(), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := s.ensurePrefix(ctx); err != nil {
		conn.Close()
		return err
	}
	return nil
}

func (s *Store) ensurePrefix(ctx context.Context) error {
	if s.set.prefix == "/" {
		return nil
	}
	p := ""
	for _, part := range splitPath(s.set.prefix) {
		p += "/" + part
		err := s.do(ctx, func() error {
			_, err := s.conn.Create(p, nil, 0, acl)
			return err
		})
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("create keyPrefixPath %s: %w", p, err)
		}
	}
	return nil
}

// Features: ETags and transactions.
func (s *Store) Features() []cstate.Feature {
	return []cstate.Feature{cstate.FeatureETag, cstate.FeatureTransactional}
}

// GetComponentMetadata is for contrib's metadata tooling; nothing to report.
func (s *Store) GetComponentMetadata() metadata.MetadataMap { return metadata.MetadataMap{} }

// Close ends the session.
func (s *Store) Close() error {
	if s.conn != nil {
		s.conn.Close()
	}
	return nil
}

// do runs a ZooKeeper call, bounded by ctx, and classifies its error.
func (s *Store) do(ctx context.Context, f func() error) error {
	if st := s.conn.State(); st != zk.StateHasSession {
		return fmt.Errorf("zookeeper %s: no session (state %s): %w", s.conn.Server(), st, errkind.ErrUnavailable)
	}
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if errors.Is(err, zk.ErrInvalidPath) || errors.Is(err, zk.ErrBadArguments) {
			return fmt.Errorf("%w: %w", err, errkind.ErrInvalidArgument)
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) path(key string) string { return join(s.set.prefix, key) }

func etagOf(z *zk.Stat) *string {
	e := strconv.FormatInt(z.Mzxid, 10)
	return &e
}

// Get reads a key; strong consistency syncs the server with the leader first.
func (s *Store) Get(ctx context.Context, req *cstate.GetRequest) (*cstate.GetResponse, error) {
	p := s.path(req.Key)
	var (
		data []byte
		stat *zk.Stat
	)
	err := s.do(ctx, func() error {
		if req.Options.Consistency == cstate.Strong {
			if _, err := s.conn.Sync(p); err != nil {
				return err
			}
		}
		var err error
		data, stat, err = s.conn.Get(p)
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return &cstate.GetResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if data == nil {
		data = []byte{}
	}
	return &cstate.GetResponse{Data: data, ETag: etagOf(stat)}, nil
}

// wantETag parses a first-write-wins ETag; nil means none (or last-write).
func wantETag(etag *string, concurrency string) (*int64, error) {
	if etag == nil || *etag == "" || concurrency == cstate.LastWrite {
		return nil, nil
	}
	n, err := strconv.ParseInt(*etag, 10, 64)
	if err != nil {
		return nil, cstate.NewETagError(cstate.ETagInvalid, fmt.Errorf("etag %q is not a zxid", *etag))
	}
	return &n, nil
}

func valueBytes(v any) ([]byte, error) {
	switch x := v.(type) {
	case []byte:
		return x, nil
	case string:
		return []byte(x), nil
	}
	return nil, fmt.Errorf("value of type %T: want bytes", v)
}

func (s *Store) checkSize(key, path string, data []byte) error {
	if n := len(data) + len(path) + requestOverhead; n > s.set.juteMaxBuffer {
		return errkind.InvalidArgument("value", "%d bytes for key %q do not fit in one ZooKeeper request: the server's jute.maxbuffer (%s %d) leaves %d bytes for the value",
			len(data), key, mdJuteMaxBuffer, s.set.juteMaxBuffer, max(0, s.set.juteMaxBuffer-len(path)-requestOverhead))
	}
	return nil
}

// current reads a node's stat and checks it against an ETag: the version
// to write against, or an ETag mismatch.
func (s *Store) current(p string, want int64) (int32, error) {
	ok, stat, err := s.conn.Exists(p)
	if err != nil {
		return 0, err
	}
	if !ok || stat.Mzxid != want {
		return 0, cstate.NewETagError(cstate.ETagMismatch, nil)
	}
	return stat.Version, nil
}

// mismatchOn turns the errors of a conditional write into ETag mismatches.
func mismatchOn(err error) error {
	if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) {
		return cstate.NewETagError(cstate.ETagMismatch, err)
	}
	return err
}

const raceRetries = 5

// Set writes a key; with an ETag only if it matches.
func (s *Store) Set(ctx context.Context, req *cstate.SetRequest) error {
	if err := cstate.CheckRequestOptions(req.Options); err != nil {
		return err
	}
	want, err := wantETag(req.ETag, req.Options.Concurrency)
	if err != nil {
		return err
	}
	data, err := valueBytes(req.Value)
	if err != nil {
		return err
	}
	p := s.path(req.Key)
	if err := s.checkSize(req.Key, p, data); err != nil {
		return err
	}
	return s.do(ctx, func() error {
		if want != nil {
			v, err := s.current(p, *want)
			if err != nil {
				return err
			}
			_, err = s.conn.Set(p, data, v)
			return mismatchOn(err)
		}
		for range raceRetries { // set, or create; another writer may do the other in between
			_, err := s.conn.Set(p, data, -1)
			if !errors.Is(err, zk.ErrNoNode) {
				return err
			}
			_, err = s.conn.Create(p, data, 0, acl)
			if !errors.Is(err, zk.ErrNodeExists) {
				return err
			}
		}
		return fmt.Errorf("set %s: lost %d races with concurrent creates and deletes: %w", p, raceRetries, errkind.ErrUnavailable)
	})
}

// Delete deletes a key; with an ETag only if it matches (a missing key
// never matches). Without one, deleting a missing key succeeds.
func (s *Store) Delete(ctx context.Context, req *cstate.DeleteRequest) error {
	if err := cstate.CheckRequestOptions(req.Options); err != nil {
		return err
	}
	want, err := wantETag(req.ETag, req.Options.Concurrency)
	if err != nil {
		return err
	}
	p := s.path(req.Key)
	return s.do(ctx, func() error {
		if want == nil {
			err := s.conn.Delete(p, -1)
			if errors.Is(err, zk.ErrNoNode) {
				return nil
			}
			return err
		}
		v, err := s.current(p, *want)
		if err != nil {
			return err
		}
		return mismatchOn(s.conn.Delete(p, v))
	})
}

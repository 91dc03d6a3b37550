// Package state is the state building block: request validation, key
// prefixing, ETag and consistency semantics, bulk fallbacks and
// transactions, on top of components-contrib state stores.
//
// A Store wraps one initialised contrib state.Store for one app. It is
// immutable after New and safe for concurrent use; Close closes the
// component and must be called once, after the last call has returned (the
// runtime drains calls before it closes a replaced store).
package state

import (
	"context"
	"errors"
	"fmt"
	"strings"

	cstate "github.com/dapr/components-contrib/state"

	"github.com/outrig/outrig/errkind"
)

// Operation names, as used by governance policies (PolicyTarget.method).
const (
	OpGet         = "Get"
	OpBulkGet     = "BulkGet"
	OpSet         = "Set"
	OpBulkSet     = "BulkSet"
	OpDelete      = "Delete"
	OpBulkDelete  = "BulkDelete"
	OpTransaction = "Transaction"
)

// KeyPrefixMetadata is the component metadata that chooses how keys are
// namespaced, as in Dapr: "appid" (default: "<app-id>||key"), "name"
// ("<component-name>||key"), "none" (the key as given) or any other string
// (used as the prefix itself).
const KeyPrefixMetadata = "keyPrefix"

const keySeparator = "||"

// Store is the state building block bound to one component and one app.
type Store struct {
	name     string
	typ      string
	prefix   string // includes the separator, or "" for none
	impl     cstate.Store
	etag     bool
	trans    bool
	ttl      bool
	features []string
}

// New wraps an initialised contrib store. keyPrefix is the component's
// keyPrefix metadata ("" means appid).
func New(name, typ, appID, keyPrefix string, impl cstate.Store) *Store {
	s := &Store{name: name, typ: typ, impl: impl}
	switch strings.ToLower(keyPrefix) {
	case "", "appid":
		s.prefix = appID + keySeparator
	case "name":
		s.prefix = name + keySeparator
	case "none":
		s.prefix = ""
	default:
		s.prefix = keyPrefix + keySeparator
	}
	for _, f := range impl.Features() {
		s.features = append(s.features, string(f))
		switch f {
		case cstate.FeatureETag:
			s.etag = true
		case cstate.FeatureTransactional:
			s.trans = true
		case cstate.FeatureTTL:
			s.ttl = true
		}
	}
	if _, ok := impl.(cstate.TransactionalStore); !ok {
		s.trans = false
	}
	return s
}

// Name is the component name.
func (s *Store) Name() string { return s.name }

// Type is the component type, e.g. state.redis.
func (s *Store) Type() string { return s.typ }

// Features lists the component's declared features (ETAG, TRANSACTIONAL, TTL, ...).
func (s *Store) Features() []string { return s.features }

// Close closes the component.
func (s *Store) Close() error { return s.impl.Close() }

func (s *Store) key(k string) string {
	if s.prefix == "" {
		return k
	}
	return s.prefix + k
}

func (s *Store) unkey(k string) string { return strings.TrimPrefix(k, s.prefix) }

// Item is the value of a key as read.
type Item struct {
	Key         string
	Value       []byte
	ETag        string
	Found       bool
	Metadata    map[string]string
	ContentType string
	Err         string // bulk reads: per-key error
}

// SetItem is one write.
type SetItem struct {
	Key         string
	Value       []byte
	ETag        *string // nil: no ETag given
	Concurrency string  // "first-write", "last-write" or ""
	Consistency string  // "eventual", "strong" or ""
	Metadata    map[string]string
	ContentType string
}

// DeleteItem is one delete.
type DeleteItem struct {
	Key         string
	ETag        *string
	Concurrency string
	Consistency string
	Metadata    map[string]string
}

// TxOp is one operation of a transaction: exactly one of Set and Delete.
type TxOp struct {
	Set    *SetItem
	Delete *DeleteItem
}

func checkKey(field, key string) error {
	if key == "" {
		return errkind.Required(field)
	}
	if strings.Contains(key, keySeparator) {
		return errkind.InvalidArgument(field, "key %q must not contain %q", key, keySeparator)
	}
	return nil
}

// Get reads one key; a missing key is Found=false, not an error.
func (s *Store) Get(ctx context.Context, key, consistency string, md map[string]string) (Item, error) {
	if err := checkKey("key", key); err != nil {
		return Item{}, err
	}
	resp, err := s.impl.Get(ctx, &cstate.GetRequest{Key: s.key(key), Metadata: md, Options: cstate.GetStateOption{Consistency: consistency}})
	if err != nil {
		return Item{}, s.wrap("get", key, err)
	}
	return s.item(key, resp), nil
}

// item is the Item of key that a component's answer resp (may be nil) describes.
func (s *Store) item(key string, resp *cstate.GetResponse) Item {
	it := Item{Key: key}
	if resp == nil {
		return it
	}
	it.Value, it.Metadata = resp.Data, resp.Metadata
	it.Found = resp.Data != nil || resp.ETag != nil
	if resp.ETag != nil {
		it.ETag = *resp.ETag
	}
	if resp.ContentType != nil {
		it.ContentType = *resp.ContentType
	}
	return it
}

// AsyncGetter is implemented by a contrib store that can start a read
// without blocking and report it later (state.redis: commands of concurrent
// callers go out in one pipeline, and the goroutine reading the pipeline's
// replies completes them). GetAsync calls done exactly once, on any
// goroutine, possibly before it returns; done must not block. Safe for
// concurrent use.
type AsyncGetter interface {
	GetAsync(req *cstate.GetRequest, done func(*cstate.GetResponse, error))
}

// CanGetAsync reports whether GetAsync is available (the component is an
// AsyncGetter).
func (s *Store) CanGetAsync() bool {
	_, ok := s.impl.(AsyncGetter)
	return ok
}

// GetAsync is Get, started without blocking and reported to done (once, on
// any goroutine, possibly before GetAsync returns) when CanGetAsync; a store
// that cannot reports an error to done.
func (s *Store) GetAsync(key, consistency string, md map[string]string, done func(Item, error)) {
	if err := checkKey("key", key); err != nil {
		done(Item{}, err)
		return
	}
	ag, ok := s.impl.(AsyncGetter)
	if !ok {
		done(Item{}, s.wrap("get", key, errors.New("the component cannot read asynchronously")))
		return
	}
	ag.GetAsync(&cstate.GetRequest{Key: s.key(key), Metadata: md, Options: cstate.GetStateOption{Consistency: consistency}},
		func(resp *cstate.GetResponse, err error) {
			if err != nil {
				done(Item{}, s.wrap("get", key, err))
				return
			}
			done(s.item(key, resp), nil)
		})
}

// BulkGet reads several keys; each item carries its own error.
func (s *Store) BulkGet(ctx context.Context, keys []string, parallelism int, md map[string]string) ([]Item, error) {
	if len(keys) == 0 {
		return nil, errkind.Required("keys")
	}
	reqs := make([]cstate.GetRequest, len(keys))
	for i, k := range keys {
		if err := checkKey(fmt.Sprintf("keys[%d]", i), k); err != nil {
			return nil, err
		}
		reqs[i] = cstate.GetRequest{Key: s.key(k), Metadata: md}
	}
	resps, err := s.impl.BulkGet(ctx, reqs, cstate.BulkGetOpts{Parallelism: parallelism})
	if err != nil {
		return nil, s.wrap("bulk get", "", err)
	}
	out := make([]Item, 0, len(resps))
	for _, r := range resps {
		it := Item{Key: s.unkey(r.Key), Value: r.Data, Metadata: r.Metadata, Err: r.Error}
		it.Found = r.Error == "" && (r.Data != nil || r.ETag != nil)
		if r.ETag != nil {
			it.ETag = *r.ETag
		}
		if r.ContentType != nil {
			it.ContentType = *r.ContentType
		}
		out = append(out, it)
	}
	return out, nil
}

func (s *Store) setRequest(field string, it SetItem) (cstate.SetRequest, error) {
	if err := checkKey(field+".key", it.Key); err != nil {
		return cstate.SetRequest{}, err
	}
	if err := s.checkMetadata(field, it.Metadata); err != nil {
		return cstate.SetRequest{}, err
	}
	req := cstate.SetRequest{
		Key:      s.key(it.Key),
		Value:    it.Value,
		ETag:     effectiveETag(it.ETag, it.Concurrency),
		Metadata: it.Metadata,
		Options:  cstate.SetStateOption{Concurrency: concurrency(it.ETag, it.Concurrency), Consistency: it.Consistency},
	}
	if it.Value == nil {
		req.Value = []byte{}
	}
	if it.ContentType != "" {
		ct := it.ContentType
		req.ContentType = &ct
	}
	if req.ETag != nil && !s.etag && req.Options.Concurrency == "first-write" {
		return req, fmt.Errorf("%s.etag: store %q (%s) does not support ETags: %w", field, s.name, s.typ, errkind.ErrUnsupported)
	}
	return req, nil
}

// effectiveETag drops the ETag under explicit last-write-wins: the write
// must land whatever the stored ETag is.
func effectiveETag(etag *string, mode string) *string {
	if mode == "last-write" {
		return nil
	}
	return etag
}

// concurrency: an ETag given without an explicit mode means first-write-wins.
func concurrency(etag *string, mode string) string {
	if mode != "" {
		return mode
	}
	if etag != nil {
		return "first-write"
	}
	return "last-write"
}

func (s *Store) checkMetadata(field string, md map[string]string) error {
	v, ok := md["ttlInSeconds"]
	if !ok {
		return nil
	}
	if !s.ttl {
		return fmt.Errorf("%s.metadata.ttlInSeconds: store %q (%s) does not support TTL: %w", field, s.name, s.typ, errkind.ErrUnsupported)
	}
	var n int64
	if _, err := fmt.Sscan(v, &n); err != nil || n < -1 {
		return errkind.InvalidArgument(field+".metadata.ttlInSeconds", "%q is not a whole number of seconds >= -1", v)
	}
	return nil
}

// Set writes items. One item is a Set; several use the store's bulk write.
func (s *Store) Set(ctx context.Context, items []SetItem) error {
	if len(items) == 0 {
		return errkind.Required("states")
	}
	reqs := make([]cstate.SetRequest, len(items))
	for i, it := range items {
		r, err := s.setRequest(fmt.Sprintf("states[%d]", i), it)
		if err != nil {
			return err
		}
		reqs[i] = r
	}
	var err error
	if len(reqs) == 1 {
		err = s.impl.Set(ctx, &reqs[0])
	} else {
		err = s.impl.BulkSet(ctx, reqs, cstate.BulkStoreOpts{})
	}
	return s.wrap("save", firstKey(items), err)
}

func firstKey(items []SetItem) string {
	if len(items) == 1 {
		return items[0].Key
	}
	return ""
}

func (s *Store) deleteRequest(field string, it DeleteItem) (cstate.DeleteRequest, error) {
	if err := checkKey(field+"key", it.Key); err != nil {
		return cstate.DeleteRequest{}, err
	}
	return cstate.DeleteRequest{
		Key:      s.key(it.Key),
		ETag:     effectiveETag(it.ETag, it.Concurrency),
		Metadata: it.Metadata,
		Options:  cstate.DeleteStateOption{Concurrency: concurrency(it.ETag, it.Concurrency), Consistency: it.Consistency},
	}, nil
}

// Delete deletes items. One item is a Delete; several use the bulk delete.
func (s *Store) Delete(ctx context.Context, items []DeleteItem) error {
	if len(items) == 0 {
		return errkind.Required("states")
	}
	reqs := make([]cstate.DeleteRequest, len(items))
	for i, it := range items {
		field := ""
		if len(items) > 1 {
			field = fmt.Sprintf("states[%d].", i)
		}
		r, err := s.deleteRequest(field, it)
		if err != nil {
			return err
		}
		reqs[i] = r
	}
	var err error
	if len(reqs) == 1 {
		err = s.impl.Delete(ctx, &reqs[0])
	} else {
		err = s.impl.BulkDelete(ctx, reqs, cstate.BulkStoreOpts{})
	}
	key := ""
	if len(items) == 1 {
		key = items[0].Key
	}
	return s.wrap("delete", key, err)
}

// Transaction applies upserts and deletes atomically. Stores without
// transactions get errkind.ErrUnsupported.
func (s *Store) Transaction(ctx context.Context, ops []TxOp, md map[string]string) error {
	if !s.trans {
		return fmt.Errorf("store %q (%s) does not support transactions: %w", s.name, s.typ, errkind.ErrUnsupported)
	}
	if len(ops) == 0 {
		return errkind.Required("operations")
	}
	req := &cstate.TransactionalStateRequest{Metadata: md, Operations: make([]cstate.TransactionalStateOperation, 0, len(ops))}
	for i, op := range ops {
		field := fmt.Sprintf("operations[%d]", i)
		switch {
		case op.Set != nil && op.Delete == nil:
			r, err := s.setRequest(field+".request", *op.Set)
			if err != nil {
				return err
			}
			req.Operations = append(req.Operations, r)
		case op.Delete != nil && op.Set == nil:
			r, err := s.deleteRequest(field+".request.", *op.Delete)
			if err != nil {
				return err
			}
			req.Operations = append(req.Operations, r)
		default:
			return errkind.InvalidArgument(field+".operation_type", "want upsert or delete")
		}
	}
	if max, ok := s.impl.(cstate.TransactionalStoreMultiMaxSize); ok && max.MultiMaxSize() > 0 && len(ops) > max.MultiMaxSize() {
		return errkind.InvalidArgument("operations", "%d operations exceed the store's limit of %d", len(ops), max.MultiMaxSize())
	}
	return s.wrap("transaction", "", s.impl.(cstate.TransactionalStore).Multi(ctx, req))
}

// wrap converts a component error into an errkind error with context.
func (s *Store) wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	where := fmt.Sprintf("state store %q %s", s.name, op)
	if key != "" {
		where += fmt.Sprintf(" key %q", key)
	}
	var etagErr *cstate.ETagError
	if errors.As(err, &etagErr) {
		switch etagErr.Kind() {
		case cstate.ETagMismatch:
			return fmt.Errorf("%s: %w: %w", where, errkind.ErrEtagMismatch, err)
		case cstate.ETagInvalid:
			return fmt.Errorf("%s: invalid etag: %w: %w", where, errkind.ErrInvalidArgument, err)
		}
	}
	var bulkErr cstate.BulkStoreError
	if errors.As(err, &bulkErr) && bulkErr.ETagError() != nil {
		return fmt.Errorf("%s: %w: %w", where, errkind.ErrEtagMismatch, err)
	}
	if errkind.Classified(err) {
		return fmt.Errorf("%s: %w", where, err)
	}
	// Anything else from a backend: it is down, overloaded or broken; the
	// caller may retry.
	return fmt.Errorf("%s: %w: %w", where, errkind.ErrUnavailable, err)
}

package outrig

import (
	"context"
	"errors"
	"strconv"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
)

// StateItem is one item read from a state store.
type StateItem struct {
	Key   string
	Value []byte
	// ETag is the item's current entity tag ("" when the store has none);
	// pass it to WithETag for a conditional write.
	ETag string
	// Found reports whether the key exists. A missing key is not an error.
	Found       bool
	Metadata    map[string]string
	ContentType string
}

// BulkStateItem is one result of GetBulkState.
type BulkStateItem struct {
	StateItem
	// Err is set when reading this key failed; the other keys are unaffected.
	Err error
}

// SaveItem is one item of SaveBulkState. Options take the same values as
// SaveState's (WithETag, WithTTL, WithConsistency, WithConcurrency,
// WithMetadata, WithContentType).
type SaveItem struct {
	Key     string
	Value   []byte
	Options []StateOption
}

// DeleteItem is one item of DeleteBulkState. Options take the same values as
// DeleteState's (WithETag, WithConsistency, WithConcurrency, WithMetadata).
type DeleteItem struct {
	Key     string
	Options []StateOption
}

// GetState reads key from store. A missing key returns an item with Found
// false and a nil error. Options: WithConsistency, WithMetadata.
func (c *Client) GetState(ctx context.Context, store, key string, opts ...StateOption) (*StateItem, error) {
	const op = "GetState"
	if err := requireStoreKey(op, store, key); err != nil {
		return nil, err
	}
	o, err := collectStateOptions(op, allowGet, opts)
	if err != nil {
		return nil, err
	}
	req := &runtimev1.GetStateRequest{StoreName: store, Key: key, Consistency: o.consistency, Metadata: o.md.m}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	resp, err := c.t.getState(ctx, req)
	if err != nil {
		return nil, err
	}
	return &StateItem{
		Key:         key,
		Value:       resp.GetData(),
		ETag:        resp.GetEtag(),
		Found:       resp.GetFound(),
		Metadata:    resp.GetMetadata(),
		ContentType: resp.GetContentType(),
	}, nil
}

// GetBulkState reads keys from store. Results come back one per key; a key
// that failed carries its own Err. Options: WithParallelism, WithMetadata.
func (c *Client) GetBulkState(ctx context.Context, store string, keys []string, opts ...StateOption) ([]BulkStateItem, error) {
	const op = "GetBulkState"
	if store == "" {
		return nil, invalidArg(op, "store", "is required")
	}
	if len(keys) == 0 {
		return nil, invalidArg(op, "keys", "must not be empty")
	}
	for i, k := range keys {
		if k == "" {
			return nil, invalidArg(op, "keys["+strconv.Itoa(i)+"]", "is empty")
		}
	}
	o, err := collectStateOptions(op, allowGetBulk, opts)
	if err != nil {
		return nil, err
	}
	req := &runtimev1.GetBulkStateRequest{StoreName: store, Keys: keys, Parallelism: o.parallelism, Metadata: o.md.m}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	resp, err := c.t.getBulkState(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make([]BulkStateItem, len(resp.GetItems()))
	for i, it := range resp.GetItems() {
		out[i] = BulkStateItem{StateItem: StateItem{
			Key:         it.GetKey(),
			Value:       it.GetData(),
			ETag:        it.GetEtag(),
			Found:       it.GetFound(),
			Metadata:    it.GetMetadata(),
			ContentType: it.GetContentType(),
		}}
		if it.GetError() != "" {
			out[i].Err = errors.New(it.GetError())
		}
	}
	return out, nil
}

// SaveState writes value under key in store. Options: WithETag
// (first-write-wins; a stale ETag fails with ErrETagMismatch), WithTTL,
// WithConsistency, WithConcurrency, WithMetadata, WithContentType.
func (c *Client) SaveState(ctx context.Context, store, key string, value []byte, opts ...StateOption) error {
	const op = "SaveState"
	if err := requireStoreKey(op, store, key); err != nil {
		return err
	}
	o, err := collectStateOptions(op, allowSave, opts)
	if err != nil {
		return err
	}
	req := &runtimev1.SaveStateRequest{StoreName: store, States: []*runtimev1.StateItem{o.item(key, value)}}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	return c.t.saveState(ctx, req)
}

// SaveBulkState writes several items in one call. It is not atomic; use
// ExecuteStateTransaction for that.
func (c *Client) SaveBulkState(ctx context.Context, store string, items ...SaveItem) error {
	const op = "SaveBulkState"
	if store == "" {
		return invalidArg(op, "store", "is required")
	}
	if len(items) == 0 {
		return invalidArg(op, "items", "must not be empty")
	}
	states := make([]*runtimev1.StateItem, len(items))
	for i, it := range items {
		field := "items[" + strconv.Itoa(i) + "]"
		if it.Key == "" {
			return invalidArg(op, field+".Key", "is required")
		}
		o, err := collectStateOptions(op+" "+field, allowSave, it.Options)
		if err != nil {
			return err
		}
		states[i] = o.item(it.Key, it.Value)
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	return c.t.saveState(ctx, &runtimev1.SaveStateRequest{StoreName: store, States: states})
}

// DeleteState deletes key from store. Deleting a missing key succeeds.
// Options: WithETag, WithConsistency, WithConcurrency, WithMetadata.
func (c *Client) DeleteState(ctx context.Context, store, key string, opts ...StateOption) error {
	const op = "DeleteState"
	if err := requireStoreKey(op, store, key); err != nil {
		return err
	}
	o, err := collectStateOptions(op, allowDelete, opts)
	if err != nil {
		return err
	}
	req := &runtimev1.DeleteStateRequest{
		StoreName: store,
		Key:       key,
		Etag:      o.etagProto(),
		Options:   o.stateOptionsProto(),
		Metadata:  o.md.m,
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	return c.t.deleteState(ctx, req)
}

// DeleteBulkState deletes several keys in one call (not atomically).
func (c *Client) DeleteBulkState(ctx context.Context, store string, items ...DeleteItem) error {
	const op = "DeleteBulkState"
	if store == "" {
		return invalidArg(op, "store", "is required")
	}
	if len(items) == 0 {
		return invalidArg(op, "items", "must not be empty")
	}
	states := make([]*runtimev1.StateItem, len(items))
	for i, it := range items {
		field := "items[" + strconv.Itoa(i) + "]"
		if it.Key == "" {
			return invalidArg(op, field+".Key", "is required")
		}
		o, err := collectStateOptions(op+" "+field, allowDelete, it.Options)
		if err != nil {
			return err
		}
		states[i] = o.item(it.Key, nil)
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	return c.t.deleteBulkState(ctx, &runtimev1.DeleteBulkStateRequest{StoreName: store, States: states})
}

func requireStoreKey(op, store, key string) error {
	if store == "" {
		return invalidArg(op, "store", "is required")
	}
	if key == "" {
		return invalidArg(op, "key", "is required")
	}
	return nil
}

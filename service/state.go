package service

import (
	"context"
	"fmt"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"

	"github.com/outrig/outrig/errkind"
	rt "github.com/outrig/outrig/runtime"
	"github.com/outrig/outrig/state"
)

func (s *Service) store(ctx context.Context, name string) (*rt.App, *rt.Snapshot, *state.Store, error) {
	app, snap, err := s.enter(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	st := snap.State[name]
	if st == nil {
		snap.Release()
		return nil, nil, nil, notFound("state store", name)
	}
	return app, snap, st, nil
}

func consistency(c runtimev1.Consistency) string {
	switch c {
	case runtimev1.Consistency_CONSISTENCY_EVENTUAL:
		return "eventual"
	case runtimev1.Consistency_CONSISTENCY_STRONG:
		return "strong"
	}
	return ""
}

func concurrency(o *runtimev1.StateOptions) string {
	switch o.GetConcurrency() {
	case runtimev1.StateOptions_CONCURRENCY_FIRST_WRITE:
		return "first-write"
	case runtimev1.StateOptions_CONCURRENCY_LAST_WRITE:
		return "last-write"
	}
	return ""
}

func etag(e *runtimev1.Etag) *string {
	if e == nil {
		return nil
	}
	v := e.Value
	return &v
}

func setItem(it *runtimev1.StateItem) state.SetItem {
	return state.SetItem{
		Key: it.GetKey(), Value: it.GetValue(), ETag: etag(it.GetEtag()),
		Concurrency: concurrency(it.GetOptions()), Consistency: consistency(it.GetOptions().GetConsistency()),
		Metadata: it.GetMetadata(), ContentType: it.GetContentType(),
	}
}

func deleteItem(it *runtimev1.StateItem) state.DeleteItem {
	return state.DeleteItem{
		Key: it.GetKey(), ETag: etag(it.GetEtag()), Concurrency: concurrency(it.GetOptions()),
		Consistency: consistency(it.GetOptions().GetConsistency()), Metadata: it.GetMetadata(),
	}
}

// GetState implements RuntimeServer.
func (s *Service) GetState(ctx context.Context, req *runtimev1.GetStateRequest) (*runtimev1.GetStateResponse, error) {
	app, snap, st, err := s.store(ctx, req.GetStoreName())
	if err != nil {
		return nil, err
	}
	defer snap.Release()
	var it state.Item
	err = snap.Policies.Lookup(KindState, st.Name(), state.OpGet, app.ID).Do(ctx, func(ctx context.Context) error {
		var err error
		it, err = st.Get(ctx, req.GetKey(), consistency(req.GetConsistency()), req.GetMetadata())
		return err
	})
	if err != nil {
		return nil, err
	}
	return getStateResponse(it), nil
}

func getStateResponse(it state.Item) *runtimev1.GetStateResponse {
	return &runtimev1.GetStateResponse{Data: it.Value, Etag: it.ETag, Metadata: it.Metadata, Found: it.Found, ContentType: it.ContentType}
}

// GetStateAsync is GetState for a transport that does not wait for the
// answer (transport/calls.Dispatcher.CallAsync): it starts the read and
// returns true, and done gets the answer once, on any goroutine, possibly
// before GetStateAsync returns. It declines (false, done not called) when the
// read would block here: the store cannot read asynchronously, or the
// method's policy needs Do (retries, a timeout, a bulkhead, a cluster rate
// limit: governance.Chain.Async), or the call fails before it starts; the
// caller then runs GetState, which reports such errors. done must not block.
// Unlike GetState it does not stop waiting when ctx ends: the store's answer
// (or its connection's own timeout) ends the call; a caller that gave up has
// had its answer dropped by then (api/shm drops replies to cancelled calls).
func (s *Service) GetStateAsync(ctx context.Context, req *runtimev1.GetStateRequest, done func(*runtimev1.GetStateResponse, error)) bool {
	app, snap, st, err := s.store(ctx, req.GetStoreName())
	if err != nil {
		return false
	}
	chain := snap.Policies.Lookup(KindState, st.Name(), state.OpGet, app.ID)
	if !chain.Async() || !st.CanGetAsync() {
		snap.Release()
		return false
	}
	tok, err := chain.Enter(ctx)
	if err != nil {
		snap.Release()
		done(nil, err)
		return true
	}
	st.GetAsync(req.GetKey(), consistency(req.GetConsistency()), req.GetMetadata(), func(it state.Item, err error) {
		tok.Exit(err)
		snap.Release()
		if err != nil {
			done(nil, err)
			return
		}
		done(getStateResponse(it), nil)
	})
	return true
}

// GetBulkState implements RuntimeServer.
func (s *Service) GetBulkState(ctx context.Context, req *runtimev1.GetBulkStateRequest) (*runtimev1.GetBulkStateResponse, error) {
	app, snap, st, err := s.store(ctx, req.GetStoreName())
	if err != nil {
		return nil, err
	}
	defer snap.Release()
	var items []state.Item
	err = snap.Policies.Lookup(KindState, st.Name(), state.OpBulkGet, app.ID).Do(ctx, func(ctx context.Context) error {
		var err error
		items, err = st.BulkGet(ctx, req.GetKeys(), int(req.GetParallelism()), req.GetMetadata())
		return err
	})
	if err != nil {
		return nil, err
	}
	out := &runtimev1.GetBulkStateResponse{Items: make([]*runtimev1.BulkStateItem, len(items))}
	for i, it := range items {
		out.Items[i] = &runtimev1.BulkStateItem{Key: it.Key, Data: it.Value, Etag: it.ETag, Error: it.Err, Metadata: it.Metadata, Found: it.Found, ContentType: it.ContentType}
	}
	return out, nil
}

// SaveState implements RuntimeServer.
func (s *Service) SaveState(ctx context.Context, req *runtimev1.SaveStateRequest) (*runtimev1.SaveStateResponse, error) {
	app, snap, st, err := s.store(ctx, req.GetStoreName())
	if err != nil {
		return nil, err
	}
	defer snap.Release()
	items := make([]state.SetItem, len(req.GetStates()))
	for i, it := range req.GetStates() {
		items[i] = setItem(it)
	}
	op := state.OpSet
	if len(items) > 1 {
		op = state.OpBulkSet
	}
	err = snap.Policies.Lookup(KindState, st.Name(), op, app.ID).Do(ctx, func(ctx context.Context) error {
		return st.Set(ctx, items)
	})
	if err != nil {
		return nil, err
	}
	return &runtimev1.SaveStateResponse{}, nil
}

// DeleteState implements RuntimeServer.
func (s *Service) DeleteState(ctx context.Context, req *runtimev1.DeleteStateRequest) (*runtimev1.DeleteStateResponse, error) {
	app, snap, st, err := s.store(ctx, req.GetStoreName())
	if err != nil {
		return nil, err
	}
	defer snap.Release()
	it := state.DeleteItem{Key: req.GetKey(), ETag: etag(req.GetEtag()), Concurrency: concurrency(req.GetOptions()),
		Consistency: consistency(req.GetOptions().GetConsistency()), Metadata: req.GetMetadata()}
	err = snap.Policies.Lookup(KindState, st.Name(), state.OpDelete, app.ID).Do(ctx, func(ctx context.Context) error {
		return st.Delete(ctx, []state.DeleteItem{it})
	})
	if err != nil {
		return nil, err
	}
	return &runtimev1.DeleteStateResponse{}, nil
}

// DeleteBulkState implements RuntimeServer.
func (s *Service) DeleteBulkState(ctx context.Context, req *runtimev1.DeleteBulkStateRequest) (*runtimev1.DeleteBulkStateResponse, error) {
	app, snap, st, err := s.store(ctx, req.GetStoreName())
	if err != nil {
		return nil, err
	}
	defer snap.Release()
	items := make([]state.DeleteItem, len(req.GetStates()))
	for i, it := range req.GetStates() {
		items[i] = deleteItem(it)
	}
	err = snap.Policies.Lookup(KindState, st.Name(), state.OpBulkDelete, app.ID).Do(ctx, func(ctx context.Context) error {
		return st.Delete(ctx, items)
	})
	if err != nil {
		return nil, err
	}
	return &runtimev1.DeleteBulkStateResponse{}, nil
}

// ExecuteStateTransaction implements RuntimeServer.
func (s *Service) ExecuteStateTransaction(ctx context.Context, req *runtimev1.ExecuteStateTransactionRequest) (*runtimev1.ExecuteStateTransactionResponse, error) {
	app, snap, st, err := s.store(ctx, req.GetStoreName())
	if err != nil {
		return nil, err
	}
	defer snap.Release()
	ops := make([]state.TxOp, len(req.GetOperations()))
	for i, op := range req.GetOperations() {
		if op.GetRequest() == nil {
			return nil, errkind.Required(fmt.Sprintf("operations[%d].request", i))
		}
		switch op.GetOperationType() {
		case runtimev1.TransactionalStateOperation_OPERATION_TYPE_UPSERT:
			it := setItem(op.GetRequest())
			ops[i].Set = &it
		case runtimev1.TransactionalStateOperation_OPERATION_TYPE_DELETE:
			it := deleteItem(op.GetRequest())
			ops[i].Delete = &it
		default:
			return nil, errkind.InvalidArgument(fmt.Sprintf("operations[%d].operation_type", i), "want UPSERT or DELETE, got %v", op.GetOperationType())
		}
	}
	err = snap.Policies.Lookup(KindState, st.Name(), state.OpTransaction, app.ID).Do(ctx, func(ctx context.Context) error {
		return st.Transaction(ctx, ops, req.GetMetadata())
	})
	if err != nil {
		return nil, err
	}
	return &runtimev1.ExecuteStateTransactionResponse{}, nil
}

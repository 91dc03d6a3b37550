package outrig

import (
	"context"
	"strconv"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
)

type txKind uint8

const (
	txUpsert txKind = iota + 1
	txDelete
	txMetadata
)

// StateOperation is one step of ExecuteStateTransaction, made by Upsert,
// Delete or TransactionMetadata. The zero value is invalid.
type StateOperation struct {
	kind  txKind
	key   string
	value []byte
	opts  []StateOption
	md    map[string]string
}

// Upsert writes value under key within a transaction. Options as SaveState.
func Upsert(key string, value []byte, opts ...StateOption) StateOperation {
	return StateOperation{kind: txUpsert, key: key, value: value, opts: opts}
}

// Delete deletes key within a transaction. Options as DeleteState.
func Delete(key string, opts ...StateOption) StateOperation {
	return StateOperation{kind: txDelete, key: key, opts: opts}
}

// TransactionMetadata adds metadata to the transaction as a whole (not to one
// item), e.g. a partition key. It may appear anywhere among the operations.
func TransactionMetadata(md map[string]string) StateOperation {
	return StateOperation{kind: txMetadata, md: md}
}

// ExecuteStateTransaction applies ops atomically on store: all of them or
// none. Stores that do not support transactions answer ErrUnsupported; a
// stale ETag in any operation fails the whole transaction with
// ErrETagMismatch.
func (c *Client) ExecuteStateTransaction(ctx context.Context, store string, ops ...StateOperation) error {
	const op = "ExecuteStateTransaction"
	if store == "" {
		return invalidArg(op, "store", "is required")
	}
	var md metadataBuilder
	wire := make([]*runtimev1.TransactionalStateOperation, 0, len(ops))
	for i, s := range ops {
		field := "ops[" + strconv.Itoa(i) + "]"
		var (
			kind    runtimev1.TransactionalStateOperation_OperationType
			allowed uint16
		)
		switch s.kind {
		case txUpsert:
			kind, allowed = runtimev1.TransactionalStateOperation_OPERATION_TYPE_UPSERT, allowTxnUpsert
		case txDelete:
			kind, allowed = runtimev1.TransactionalStateOperation_OPERATION_TYPE_DELETE, allowTxnDelete
		case txMetadata:
			md.merge(s.md)
			continue
		default:
			return invalidArg(op, field, "is not made by Upsert, Delete or TransactionMetadata")
		}
		if s.key == "" {
			return invalidArg(op, field+" key", "is required")
		}
		o, err := collectStateOptions(op+" "+field, allowed, s.opts)
		if err != nil {
			return err
		}
		wire = append(wire, &runtimev1.TransactionalStateOperation{OperationType: kind, Request: o.item(s.key, s.value)})
	}
	if len(wire) == 0 {
		return invalidArg(op, "ops", "must contain at least one Upsert or Delete")
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	return c.t.executeStateTransaction(ctx, &runtimev1.ExecuteStateTransactionRequest{
		StoreName: store, Operations: wire, Metadata: md.m,
	})
}

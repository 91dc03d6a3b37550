package outrig

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	"google.golang.org/grpc/codes"
)

// Consistency is the consistency a state operation asks for.
type Consistency int32

// Consistency levels. The zero value leaves the choice to the store.
const (
	ConsistencyEventual = Consistency(runtimev1.Consistency_CONSISTENCY_EVENTUAL)
	ConsistencyStrong   = Consistency(runtimev1.Consistency_CONSISTENCY_STRONG)
)

// Concurrency is the concurrency mode of a write or delete.
type Concurrency int32

// Concurrency modes. The zero value means first-write-wins when an ETag is
// given (WithETag) and last-write-wins otherwise.
const (
	// ConcurrencyFirstWrite: the write needs the current ETag; a stale one
	// fails with ErrETagMismatch.
	ConcurrencyFirstWrite = Concurrency(runtimev1.StateOptions_CONCURRENCY_FIRST_WRITE)
	// ConcurrencyLastWrite: the ETag is ignored.
	ConcurrencyLastWrite = Concurrency(runtimev1.StateOptions_CONCURRENCY_LAST_WRITE)
)

// ttlKey is the component metadata key for a time to live, in seconds.
const ttlKey = "ttlInSeconds"

// Bits naming state options, to reject options an operation does not take.
const (
	optETag uint16 = 1 << iota
	optTTL
	optConsistency
	optConcurrency
	optMetadata
	optContentType
	optParallelism
)

var stateOptNames = [...]string{"WithETag", "WithTTL", "WithConsistency", "WithConcurrency", "WithMetadata", "WithContentType", "WithParallelism"}

// Which options each kind of state operation takes.
const (
	allowGet       = optConsistency | optMetadata
	allowGetBulk   = optMetadata | optParallelism
	allowSave      = optETag | optTTL | optConsistency | optConcurrency | optMetadata | optContentType
	allowDelete    = optETag | optConsistency | optConcurrency | optMetadata
	allowTxnUpsert = allowSave
	allowTxnDelete = allowDelete
)

type stateOptions struct {
	set         uint16
	etag        string
	consistency runtimev1.Consistency
	concurrency runtimev1.StateOptions_Concurrency
	contentType string
	parallelism int32
	md          metadataBuilder
	err         string // first problem found in an option value
}

func (o *stateOptions) fail(msg string) {
	if o.err == "" {
		o.err = msg
	}
}

type stateOptionFunc func(*stateOptions)

func (f stateOptionFunc) applyState(o *stateOptions) { f(o) }

// WithETag makes a write or delete conditional on the item's current ETag
// (first-write-wins): if the stored ETag differs the call fails with
// ErrETagMismatch. The option's presence, not its value, turns this on.
func WithETag(etag string) StateOption {
	return stateOptionFunc(func(o *stateOptions) { o.set |= optETag; o.etag = etag })
}

// WithTTL makes a saved item expire after d (rounded up to whole seconds),
// through the ttlInSeconds metadata key. d must be positive.
func WithTTL(d time.Duration) StateOption {
	return stateOptionFunc(func(o *stateOptions) {
		o.set |= optTTL
		if d <= 0 {
			o.fail(fmt.Sprintf("WithTTL: duration %v must be positive", d))
			return
		}
		secs := int64(math.Ceil(d.Seconds()))
		o.md.set(ttlKey, strconv.FormatInt(secs, 10))
	})
}

// WithConsistency asks for eventual or strong consistency.
func WithConsistency(c Consistency) StateOption {
	return stateOptionFunc(func(o *stateOptions) {
		o.set |= optConsistency
		if c != ConsistencyEventual && c != ConsistencyStrong {
			o.fail(fmt.Sprintf("WithConsistency: unknown consistency %d", c))
			return
		}
		o.consistency = runtimev1.Consistency(c)
	})
}

// WithConcurrency sets the concurrency mode (first-write or last-write wins).
func WithConcurrency(c Concurrency) StateOption {
	return stateOptionFunc(func(o *stateOptions) {
		o.set |= optConcurrency
		if c != ConcurrencyFirstWrite && c != ConcurrencyLastWrite {
			o.fail(fmt.Sprintf("WithConcurrency: unknown concurrency %d", c))
			return
		}
		o.concurrency = runtimev1.StateOptions_Concurrency(c)
	})
}

// WithParallelism bounds the parallel reads GetBulkState may do on stores
// without a native bulk get. n must be positive.
func WithParallelism(n int) StateOption {
	return stateOptionFunc(func(o *stateOptions) {
		o.set |= optParallelism
		if n <= 0 || n > math.MaxInt32 {
			o.fail(fmt.Sprintf("WithParallelism: %d must be positive", n))
			return
		}
		o.parallelism = int32(n)
	})
}

// collectStateOptions applies opts and checks that each is valid and allowed
// for the operation op.
func collectStateOptions(op string, allowed uint16, opts []StateOption) (stateOptions, error) {
	var o stateOptions
	for _, opt := range opts {
		if opt == nil {
			return o, invalidArg(op, "option", "is nil")
		}
		opt.applyState(&o)
	}
	if o.err != "" {
		return o, newError(op, codes.InvalidArgument, o.err)
	}
	if extra := o.set &^ allowed; extra != 0 {
		var names []string
		for i, n := range stateOptNames {
			if extra&(1<<i) != 0 {
				names = append(names, n)
			}
		}
		return o, newError(op, codes.InvalidArgument, "option "+strings.Join(names, ", ")+" does not apply to "+op)
	}
	return o, nil
}

// stateOptionsProto returns the per-item options message, nil when empty.
func (o *stateOptions) stateOptionsProto() *runtimev1.StateOptions {
	if o.consistency == 0 && o.concurrency == 0 {
		return nil
	}
	return &runtimev1.StateOptions{Concurrency: o.concurrency, Consistency: o.consistency}
}

func (o *stateOptions) etagProto() *runtimev1.Etag {
	if o.set&optETag == 0 {
		return nil
	}
	return &runtimev1.Etag{Value: o.etag}
}

// item builds the wire item for key and value with these options.
func (o *stateOptions) item(key string, value []byte) *runtimev1.StateItem {
	return &runtimev1.StateItem{
		Key:         key,
		Value:       value,
		Etag:        o.etagProto(),
		Metadata:    o.md.m,
		Options:     o.stateOptionsProto(),
		ContentType: o.contentType,
	}
}

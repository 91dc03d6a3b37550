package outrig

import (
	"context"
	"errors"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Sentinel errors a caller tests with errors.Is. Every error returned by a
// Client method that came from the sidecar (or from the SDK's own argument
// checks) is an *Error whose code selects at most one of these.
var (
	// ErrInvalidArgument: a field is missing or malformed (INVALID_ARGUMENT).
	ErrInvalidArgument = errors.New("outrig: invalid argument")
	// ErrNotFound: unknown store, pubsub, binding, app id or method (NOT_FOUND).
	ErrNotFound = errors.New("outrig: not found")
	// ErrETagMismatch: a first-write-wins write or delete lost (ABORTED).
	ErrETagMismatch = errors.New("outrig: etag mismatch")
	// ErrRateLimited: rate limited or bulkhead full (RESOURCE_EXHAUSTED).
	// RetryAfter may say when to try again.
	ErrRateLimited = errors.New("outrig: rate limited")
	// ErrUnavailable: sidecar unreachable, breaker open, call shed, backend
	// or callee down (UNAVAILABLE).
	ErrUnavailable = errors.New("outrig: unavailable")
	// ErrDeadlineExceeded: the call's deadline passed (DEADLINE_EXCEEDED).
	// Such an error also matches context.DeadlineExceeded.
	ErrDeadlineExceeded = errors.New("outrig: deadline exceeded")
	// ErrUnsupported: the component does not support the operation
	// (FAILED_PRECONDITION).
	ErrUnsupported = errors.New("outrig: not supported")
)

// codeTable is the one mapping between gRPC codes and sentinels, used in both
// directions: for errors coming from the sidecar (code → sentinel) and for
// errors returned by Serve handlers (sentinel → code).
var codeTable = [...]struct {
	code     codes.Code
	sentinel error
}{
	{codes.InvalidArgument, ErrInvalidArgument},
	{codes.NotFound, ErrNotFound},
	{codes.Aborted, ErrETagMismatch},
	{codes.ResourceExhausted, ErrRateLimited},
	{codes.Unavailable, ErrUnavailable},
	{codes.DeadlineExceeded, ErrDeadlineExceeded},
	{codes.FailedPrecondition, ErrUnsupported},
}

func sentinelFor(c codes.Code) error {
	for _, e := range codeTable {
		if e.code == c {
			return e.sentinel
		}
	}
	return nil
}

// retryAfterKey is the response trailer key in which the sidecar says, in milliseconds, when a rejected call may succeed.
const retryAfterKey = "retry-after-ms"

// Error is the error type of every failed Client call. It keeps the gRPC
// status the sidecar sent (status.Code(err) and status.FromError work on it),
// matches one of the sentinels above with errors.Is, and unwraps to the
// status error.
type Error struct {
	op         string
	st         *status.Status
	retryAfter time.Duration
	hasRetry   bool
}

// newError builds an *Error for op with code and message.
func newError(op string, c codes.Code, msg string) *Error {
	return &Error{op: op, st: status.New(c, msg)}
}

// invalidArg is the SDK's own argument-check error; it names the field.
func invalidArg(op, field, problem string) *Error {
	return newError(op, codes.InvalidArgument, field+" "+problem)
}

// fromRPC converts an error from a gRPC call of op into an *Error, reading
// the retry-after hint from the response trailer (may be nil). The sidecar
// sets the hint with grpc.SetTrailer; a failed call's metadata arrives in
// the trailer. Only the trailer is captured: capturing the header as well
// costs every call (successful ones too) four more allocations.
func fromRPC(op string, err error, trailer metadata.MD) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		// Not a status (should not happen with grpc-go); keep the text.
		st = status.New(codes.Unknown, err.Error())
	}
	e := &Error{op: op, st: st}
	if d, ok := parseRetryAfter(trailer); ok {
		e.retryAfter, e.hasRetry = d, true
	} else if d, ok := retryInfo(st); ok {
		e.retryAfter, e.hasRetry = d, true
	}
	return e
}

// retryInfo reads the hint from a google.rpc.RetryInfo detail (the form
// that crosses the shared-memory transport, which has no trailers).
func retryInfo(st *status.Status) (time.Duration, bool) {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

func parseRetryAfter(md metadata.MD) (time.Duration, bool) {
	if md == nil {
		return 0, false
	}
	v := md.Get(retryAfterKey)
	if len(v) == 0 {
		return 0, false
	}
	ms, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil || ms < 0 {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// Error returns "outrig <Op>: <Code>: <server message>".
func (e *Error) Error() string {
	return "outrig " + e.op + ": " + e.st.Code().String() + ": " + e.st.Message()
}

// Op is the SDK call that failed, e.g. "GetState".
func (e *Error) Op() string { return e.op }

// Code is the gRPC status code.
func (e *Error) Code() codes.Code { return e.st.Code() }

// Message is the message exactly as the sidecar sent it.
func (e *Error) Message() string { return e.st.Message() }

// GRPCStatus lets status.FromError and status.Code see the original status.
func (e *Error) GRPCStatus() *status.Status { return e.st }

// Is matches the sentinel of e's code, and context.DeadlineExceeded /
// context.Canceled for DEADLINE_EXCEEDED / CANCELED.
func (e *Error) Is(target error) bool {
	c := e.st.Code()
	switch target {
	case context.DeadlineExceeded:
		return c == codes.DeadlineExceeded
	case context.Canceled:
		return c == codes.Canceled
	}
	s := sentinelFor(c)
	return s != nil && s == target
}

// Unwrap returns the status error, so errors.As finds whatever the status
// error type offers.
func (e *Error) Unwrap() error { return e.st.Err() }

// RetryAfter reports the sidecar's hint of how long to wait before retrying a
// rejected call (typically ErrRateLimited or ErrUnavailable), taken from the
// retry-after-ms response trailer.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.hasRetry {
		return e.retryAfter, true
	}
	return 0, false
}

// statusOf turns an error returned by an application handler (Serve) into
// the code and message sent back to the caller: an explicit gRPC status wins
// (status.FromError, which also sees *Error), then the sentinels above by
// errors.Is, then context errors, else UNKNOWN.
func statusOf(err error) (codes.Code, string) {
	if st, ok := status.FromError(err); ok {
		return st.Code(), st.Message()
	}
	for _, e := range codeTable {
		if errors.Is(err, e.sentinel) {
			return e.code, err.Error()
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded, err.Error()
	case errors.Is(err, context.Canceled):
		return codes.Canceled, err.Error()
	}
	return codes.Unknown, err.Error()
}

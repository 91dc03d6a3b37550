// Package errkind names the kinds of failure that cross the app API edge.
//
// Code anywhere in the sidecar wraps one of these sentinels with %w and adds
// context; the transports convert an error to a gRPC status code from one
// table (transport/grpc: StatusOf), by errors.Is on these sentinels. Nothing
// below the edge knows about gRPC codes.
package errkind

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The kinds. Each maps to exactly one gRPC code at the edge.
var (
	// ErrInvalidArgument: the request is malformed; the message names the field. → INVALID_ARGUMENT
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound: unknown store, pubsub, binding, app id or method. → NOT_FOUND
	ErrNotFound = errors.New("not found")
	// ErrEtagMismatch: a first-write-wins write lost. → ABORTED
	ErrEtagMismatch = errors.New("etag mismatch")
	// ErrResourceExhausted: rate limited or bulkhead full. → RESOURCE_EXHAUSTED
	ErrResourceExhausted = errors.New("resource exhausted")
	// ErrUnavailable: breaker open, call shed, backend or callee down. → UNAVAILABLE
	ErrUnavailable = errors.New("unavailable")
	// ErrUnsupported: the component cannot do this operation. → FAILED_PRECONDITION
	ErrUnsupported = errors.New("not supported")
	// ErrDeadlineExceeded: the call's deadline or a policy timeout passed. → DEADLINE_EXCEEDED
	// (context.DeadlineExceeded maps to the same code.)
	ErrDeadlineExceeded = errors.New("deadline exceeded")
)

// InvalidArgument returns an ErrInvalidArgument naming field.
func InvalidArgument(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, args...), ErrInvalidArgument)
}

// Required returns the error for a missing required field.
func Required(field string) error {
	return fmt.Errorf("%s is required: %w", field, ErrInvalidArgument)
}

// RetryAfterError carries a hint of when a rejected call may succeed. The
// edge puts it in the response metadata (retry-after-ms) next to the code of
// the wrapped kind.
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// WithRetryAfter wraps err with a retry-after hint.
func WithRetryAfter(err error, after time.Duration) error {
	return &RetryAfterError{Err: err, After: after}
}

// RetryAfter returns the hint carried by err, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After, true
	}
	return 0, false
}

var kinds = []error{ErrInvalidArgument, ErrNotFound, ErrEtagMismatch, ErrResourceExhausted, ErrUnavailable, ErrUnsupported, ErrDeadlineExceeded}

// Classified reports whether err already wraps one of the kinds (or a
// context error), so that wrapping code does not add a second kind.
func Classified(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	for _, k := range kinds {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// Package failure decides what an operation's error means for governance:
// which gRPC code it stands for (for retryable codes) and whether it counts
// as a failure of the backend (for breakers, outlier detection, adaptive
// limits and client-side throttling).
//
// Errors are understood through the errkind sentinels, the context errors,
// and two small interfaces that errors from other layers may implement:
// GRPCStatuser (every error made by google.golang.org/grpc/status does) and
// HTTPStatuser (an error carrying an HTTP response status). The error chain
// is walked through Unwrap() error and Unwrap() []error; the outermost
// recognised error decides.
package failure

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outrig/outrig/errkind"
)

// GRPCStatuser is implemented by errors that carry a gRPC status.
type GRPCStatuser interface{ GRPCStatus() *status.Status }

// HTTPStatuser is implemented by errors that carry an HTTP response status.
type HTTPStatuser interface{ HTTPStatus() int }

// timeouter is implemented by net and os timeout errors.
type timeouter interface{ Timeout() bool }

// Outcome is how a finished call counts for the health of its backend.
type Outcome uint8

const (
	// Success: the backend answered, including answers that are the
	// caller's fault (NOT_FOUND, INVALID_ARGUMENT, ABORTED/ETag mismatch,
	// HTTP 4xx, RESOURCE_EXHAUSTED).
	Success Outcome = iota
	// Failure: the backend failed or did not answer in time: UNAVAILABLE,
	// INTERNAL, UNKNOWN (including errors no rule recognises),
	// DEADLINE_EXCEEDED, DATA_LOSS, HTTP 5xx.
	Failure
	// Ignored: the caller gave up (CANCELED); says nothing about the backend.
	Ignored
)

func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Ignored:
		return "ignored"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// Classify returns the Outcome of a call that ended with err (nil: Success).
func Classify(err error) Outcome {
	if err == nil {
		return Success
	}
	return OfCode(Code(err))
}

// OfCode returns the Outcome of a call that ended with code.
func OfCode(c codes.Code) Outcome {
	switch c {
	case codes.Unavailable, codes.Internal, codes.Unknown, codes.DeadlineExceeded, codes.DataLoss:
		return Failure
	case codes.Canceled:
		return Ignored
	}
	return Success
}

// Code returns the gRPC code err stands for: OK for nil, Unknown when nothing
// in the chain is recognised. It does not allocate.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if c, ok := codeOf(err, 0); ok {
		return c
	}
	// Errors that match a kind only through an Is method.
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k.code
		}
	}
	return codes.Unknown
}

var kinds = [...]struct {
	err  error
	code codes.Code
}{
	{errkind.ErrUnavailable, codes.Unavailable},
	{errkind.ErrDeadlineExceeded, codes.DeadlineExceeded},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
	{errkind.ErrResourceExhausted, codes.ResourceExhausted},
	{errkind.ErrNotFound, codes.NotFound},
	{errkind.ErrInvalidArgument, codes.InvalidArgument},
	{errkind.ErrEtagMismatch, codes.Aborted},
	{errkind.ErrUnsupported, codes.FailedPrecondition},
}

const maxDepth = 64

func codeOf(err error, depth int) (codes.Code, bool) {
	for err != nil && depth < maxDepth {
		if c, ok := direct(err); ok {
			return c, true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if c, ok := codeOf(e, depth+1); ok {
					return c, true
				}
			}
			return codes.Unknown, false
		default:
			return codes.Unknown, false
		}
		depth++
	}
	return codes.Unknown, false
}

// direct recognises err itself, without unwrapping.
func direct(err error) (codes.Code, bool) {
	for _, k := range kinds {
		if err == k.err {
			return k.code, true
		}
	}
	switch e := err.(type) {
	case GRPCStatuser:
		if s := e.GRPCStatus(); s != nil {
			return s.Code(), true
		}
	case HTTPStatuser:
		return FromHTTP(e.HTTPStatus()), true
	case timeouter:
		if e.Timeout() {
			return codes.DeadlineExceeded, true
		}
	}
	return codes.Unknown, false
}

// FromHTTP maps an HTTP response status of an application to a gRPC code.
// Every 4xx maps to a code that is not a failure; 5xx map to failures
// (501 Not Implemented excepted).
func FromHTTP(s int) codes.Code {
	switch {
	case s < 400:
		return codes.OK
	case s == 401:
		return codes.Unauthenticated
	case s == 403:
		return codes.PermissionDenied
	case s == 404:
		return codes.NotFound
	case s == 409:
		return codes.Aborted
	case s == 412:
		return codes.FailedPrecondition
	case s == 429:
		return codes.ResourceExhausted
	case s == 499:
		return codes.Canceled
	case s < 500:
		return codes.InvalidArgument
	case s == 501:
		return codes.Unimplemented
	case s == 502, s == 503:
		return codes.Unavailable
	case s == 504:
		return codes.DeadlineExceeded
	}
	return codes.Internal
}

var codeNames = map[string]codes.Code{
	"OK": codes.OK, "CANCELLED": codes.Canceled, "CANCELED": codes.Canceled,
	"UNKNOWN": codes.Unknown, "INVALID_ARGUMENT": codes.InvalidArgument,
	"DEADLINE_EXCEEDED": codes.DeadlineExceeded, "NOT_FOUND": codes.NotFound,
	"ALREADY_EXISTS": codes.AlreadyExists, "PERMISSION_DENIED": codes.PermissionDenied,
	"RESOURCE_EXHAUSTED": codes.ResourceExhausted, "FAILED_PRECONDITION": codes.FailedPrecondition,
	"ABORTED": codes.Aborted, "OUT_OF_RANGE": codes.OutOfRange, "UNIMPLEMENTED": codes.Unimplemented,
	"INTERNAL": codes.Internal, "UNAVAILABLE": codes.Unavailable, "DATA_LOSS": codes.DataLoss,
	"UNAUTHENTICATED": codes.Unauthenticated,
}

// ParseCode parses a gRPC code name as written in the gRPC spec
// (UNAVAILABLE, DEADLINE_EXCEEDED, ...), case-insensitively.
func ParseCode(name string) (codes.Code, error) {
	if c, ok := codeNames[strings.ToUpper(strings.TrimSpace(name))]; ok {
		return c, nil
	}
	return codes.Unknown, fmt.Errorf("unknown gRPC code name %q (want e.g. UNAVAILABLE, DEADLINE_EXCEEDED): %w", name, errkind.ErrInvalidArgument)
}

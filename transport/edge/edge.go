// Package edge converts sidecar errors into gRPC statuses: the one table
// from failure kinds (errkind) to codes, used by every transport (gRPC and
// shared memory) and nowhere else.
package edge

import (
	"context"
	"errors"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/outrig/outrig/errkind"
)

// RetryAfterKey is the response metadata (gRPC trailer) carrying the
// retry-after hint of a rejected call, in milliseconds.
const RetryAfterKey = "retry-after-ms"

// table is the mapping, checked in order.
var table = []struct {
	kind error
	code codes.Code
}{
	{errkind.ErrInvalidArgument, codes.InvalidArgument},
	{errkind.ErrNotFound, codes.NotFound},
	{errkind.ErrEtagMismatch, codes.Aborted},
	{errkind.ErrResourceExhausted, codes.ResourceExhausted},
	{errkind.ErrUnsupported, codes.FailedPrecondition},
	{errkind.ErrDeadlineExceeded, codes.DeadlineExceeded},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
	{errkind.ErrUnavailable, codes.Unavailable},
}

// Code returns the gRPC code of err.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	for _, row := range table {
		if errors.Is(err, row.kind) {
			return row.code
		}
	}
	if st, ok := status.FromError(err); ok {
		return st.Code() // already a status (e.g. an app's answer relayed)
	}
	return codes.Internal
}

// Status converts err into a status with err's message, plus the
// retry-after hint (milliseconds) when err carries one. The hint is also a
// standard google.rpc.RetryInfo detail of the status, so it survives
// transports without trailers (shared memory).
func Status(err error) (st *status.Status, retryAfterMS string) {
	if err == nil {
		return nil, ""
	}
	st = status.New(Code(err), err.Error())
	if d, ok := errkind.RetryAfter(err); ok {
		retryAfterMS = strconv.FormatInt(d.Milliseconds(), 10)
		if withInfo, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)}); derr == nil {
			st = withInfo
		}
	}
	return st, retryAfterMS
}

package shm

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// encodeStatus turns a handler error into the payload of an ERROR frame: a
// serialized google.rpc.Status (SPEC.md §5.4). Errors that carry no gRPC
// status become codes.Unknown, context errors become CANCELLED or
// DEADLINE_EXCEEDED, as gRPC servers do.
func encodeStatus(err error) []byte {
	st, ok := status.FromError(err)
	if !ok {
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			st = status.FromContextError(err)
		default:
			st = status.New(codes.Unknown, err.Error())
		}
	}
	if st.Code() == codes.OK {
		st = status.New(codes.Unknown, "handler returned an error with code OK: "+st.Message())
	}
	b, merr := proto.Marshal(st.Proto())
	if merr != nil {
		b, _ = proto.Marshal(status.New(codes.Internal, "shm: cannot encode handler status: "+merr.Error()).Proto())
	}
	return b
}

// decodeStatus turns an ERROR frame payload back into a status error.
func decodeStatus(payload []byte) error {
	// A *spb.Status obtained from the grpc package, so that this package does
	// not import genproto directly.
	p := status.New(codes.Unknown, "").Proto()
	if err := proto.Unmarshal(payload, p); err != nil {
		return status.Errorf(codes.Internal, "shm: ERROR frame payload is not a google.rpc.Status: %v", err)
	}
	if codes.Code(p.GetCode()) == codes.OK {
		return status.Error(codes.Internal, "shm: ERROR frame carries status OK")
	}
	return status.FromProto(p).Err()
}

// Error is returned by Dial and by calls that fail in the transport itself
// rather than in the handler. It carries a gRPC code (status.Code and
// status.FromError see it) and wraps the underlying cause.
type Error struct {
	Code codes.Code
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "shm: " + e.Msg
	}
	return "shm: " + e.Msg + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// GRPCStatus makes the error a gRPC status error with the same code.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Error()) }

func newError(code codes.Code, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...), Err: cause}
}

// EncodeStatus is the google.rpc.Status encoding of an error used in ERROR
// frames (SPEC.md §5.4), for other carriers of the same calls (the gRPC
// Multiplex stream).
func EncodeStatus(err error) []byte { return encodeStatus(err) }

// DecodeStatus is the inverse of EncodeStatus.
func DecodeStatus(payload []byte) error { return decodeStatus(payload) }

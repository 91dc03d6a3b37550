package invoke

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/outrig/outrig/errkind"
)

// CallerHeader carries the calling app id to the app (HTTP header / gRPC metadata).
const CallerHeader = "outrig-caller-app-id"

// HTTPError is an HTTP answer >= 400 from an app. It reports its status so
// governance can classify 5xx as failures and 4xx as not.
type HTTPError struct {
	Status int
	Body   []byte
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("app answered HTTP %d: %.200s", e.Status, e.Body)
}
func (e *HTTPError) HTTPStatus() int { return e.Status }

// Unwrap maps the status to a failure kind for the edge.
func (e *HTTPError) Unwrap() error {
	switch {
	case e.Status == http.StatusNotFound:
		return errkind.ErrNotFound
	case e.Status == http.StatusTooManyRequests:
		return errkind.ErrResourceExhausted
	case e.Status == http.StatusConflict || e.Status == http.StatusPreconditionFailed:
		return errkind.ErrEtagMismatch
	case e.Status >= 500:
		return errkind.ErrUnavailable
	default:
		return errkind.ErrInvalidArgument
	}
}

// HTTPChannel forwards invocations to an HTTP app port: VERB
// http://ADDR/<method> with the payload as body and metadata as headers.
type HTTPChannel struct {
	base   string
	client *http.Client
}

// NewHTTPChannel returns a channel to the app at addr (host:port).
func NewHTTPChannel(addr string) *HTTPChannel {
	return &HTTPChannel{base: "http://" + addr, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}}}
}

// Invoke implements AppChannel.
func (c *HTTPChannel) Invoke(ctx context.Context, caller string, req *runtimev1.InvokeRequest) (*runtimev1.InvokeResponse, error) {
	verb := strings.ToUpper(req.HttpVerb)
	if verb == "" {
		verb = http.MethodPost
	}
	hreq, err := http.NewRequestWithContext(ctx, verb, c.base+"/"+strings.TrimPrefix(req.Method, "/"), bytes.NewReader(req.Data))
	if err != nil {
		return nil, errkind.InvalidArgument("method", "%q: %v", req.Method, err)
	}
	for k, v := range req.Metadata {
		hreq.Header.Set(k, v)
	}
	if req.ContentType != "" {
		hreq.Header.Set("Content-Type", req.ContentType)
	}
	hreq.Header.Set(CallerHeader, caller)
	resp, err := c.client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("app port: %w: %w", errkind.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("app port: reading answer: %w: %w", errkind.ErrUnavailable, err)
	}
	if resp.StatusCode >= 400 {
		return nil, &HTTPError{Status: resp.StatusCode, Body: body}
	}
	md := make(map[string]string, len(resp.Header))
	for k := range resp.Header {
		md[strings.ToLower(k)] = resp.Header.Get(k)
	}
	return &runtimev1.InvokeResponse{Data: body, ContentType: resp.Header.Get("Content-Type"), Metadata: md}, nil
}

// Close releases idle connections.
func (c *HTTPChannel) Close() error {
	c.client.CloseIdleConnections()
	return nil
}

// rawCodec passes already-serialised messages through gRPC untouched, so
// the sidecar can call any gRPC method of the app without its protos.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.(*[]byte); ok {
		return *b, nil
	}
	return nil, fmt.Errorf("raw codec: unexpected %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: unexpected %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

var _ encoding.Codec = rawCodec{}

// GRPCChannel forwards invocations to a gRPC app port: the method is the
// full gRPC method name (/pkg.Service/Method) and the payload the
// serialised request message, passed through as is.
type GRPCChannel struct {
	conn *grpc.ClientConn
}

// NewGRPCChannel returns a channel to the app's gRPC server at addr.
func NewGRPCChannel(addr string) (*GRPCChannel, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("app port %s: %w", addr, err)
	}
	return &GRPCChannel{conn: conn}, nil
}

// Invoke implements AppChannel.
func (c *GRPCChannel) Invoke(ctx context.Context, caller string, req *runtimev1.InvokeRequest) (*runtimev1.InvokeResponse, error) {
	method := req.Method
	if !strings.HasPrefix(method, "/") {
		method = "/" + method
	}
	if strings.Count(method, "/") != 2 {
		return nil, errkind.InvalidArgument("method", "%q: a gRPC app port needs /package.Service/Method", req.Method)
	}
	pairs := []string{CallerHeader, caller}
	for k, v := range req.Metadata {
		pairs = append(pairs, strings.ToLower(k), v)
	}
	ctx = metadata.AppendToOutgoingContext(ctx, pairs...)
	in, out := req.Data, []byte(nil)
	var header metadata.MD
	err := c.conn.Invoke(ctx, method, &in, &out, grpc.ForceCodec(rawCodec{}), grpc.Header(&header))
	if err != nil {
		st, _ := status.FromError(err)
		kind := errkind.ErrUnavailable
		switch st.Code() {
		case codes.NotFound, codes.Unimplemented:
			kind = errkind.ErrNotFound
		case codes.InvalidArgument, codes.OutOfRange:
			kind = errkind.ErrInvalidArgument
		case codes.Aborted, codes.FailedPrecondition:
			kind = errkind.ErrEtagMismatch
		case codes.ResourceExhausted:
			kind = errkind.ErrResourceExhausted
		case codes.DeadlineExceeded:
			kind = errkind.ErrDeadlineExceeded
		}
		return nil, fmt.Errorf("app port %s: %w: %w", method, kind, err)
	}
	md := map[string]string{}
	for k, v := range header {
		if len(v) > 0 {
			md[k] = v[0]
		}
	}
	return &runtimev1.InvokeResponse{Data: out, ContentType: "application/grpc", Metadata: md}, nil
}

// Close closes the connection.
func (c *GRPCChannel) Close() error { return c.conn.Close() }

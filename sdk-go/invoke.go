package outrig

import (
	"context"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
)

// InvokeResponse is the callee's answer to Invoke.
type InvokeResponse struct {
	Data        []byte
	ContentType string
	// Metadata returned by the callee (response headers / gRPC metadata).
	Metadata map[string]string
}

type invokeOptions struct {
	contentType string
	httpVerb    string
	hashKey     string
	md          metadataBuilder
}

type invokeOptionFunc func(*invokeOptions)

func (f invokeOptionFunc) applyInvoke(o *invokeOptions) { f(o) }

// WithHTTPVerb sets the HTTP verb used when the callee is reached through an
// HTTP app port (the sidecar's default is POST). Ignored for gRPC and Serve
// callees.
func WithHTTPVerb(verb string) InvokeOption {
	return invokeOptionFunc(func(o *invokeOptions) { o.httpVerb = verb })
}

// WithHashKey sets the key used by hash-based load balancing (HRW, ring
// hash), so that calls with the same key reach the same callee instance.
func WithHashKey(key string) InvokeOption {
	return invokeOptionFunc(func(o *invokeOptions) { o.hashKey = key })
}

// Invoke calls method of the application appID through the sidecars and
// returns its answer. data is passed to the callee untouched. Options:
// WithContentType, WithMetadata, WithHTTPVerb, WithHashKey.
//
// An error from the callee arrives with the callee's status code, so
// errors.Is(err, ErrNotFound) is true both for an unknown app id and for a
// callee that answered NOT_FOUND; Error.Message tells them apart.
func (c *Client) Invoke(ctx context.Context, appID, method string, data []byte, opts ...InvokeOption) (*InvokeResponse, error) {
	const op = "Invoke"
	if appID == "" {
		return nil, invalidArg(op, "appID", "is required")
	}
	if method == "" {
		return nil, invalidArg(op, "method", "is required")
	}
	var o invokeOptions
	for _, opt := range opts {
		if opt == nil {
			return nil, invalidArg(op, "option", "is nil")
		}
		opt.applyInvoke(&o)
	}
	req := &runtimev1.InvokeRequest{
		AppId:       appID,
		Method:      method,
		Data:        data,
		ContentType: o.contentType,
		HttpVerb:    o.httpVerb,
		Metadata:    o.md.m,
		HashKey:     o.hashKey,
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	resp, err := c.t.invoke(ctx, req)
	if err != nil {
		return nil, err
	}
	return &InvokeResponse{Data: resp.GetData(), ContentType: resp.GetContentType(), Metadata: resp.GetMetadata()}, nil
}

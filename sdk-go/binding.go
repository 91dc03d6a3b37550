package outrig

import (
	"context"

	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
)

// BindingResponse is the answer of an output binding operation.
type BindingResponse struct {
	Data     []byte
	Metadata map[string]string
}

// InvokeBinding runs operation (e.g. create, get, delete, list, exec, query)
// on the output binding name with data and metadata (binding-specific, may be
// nil; the map is not modified).
func (c *Client) InvokeBinding(ctx context.Context, name, operation string, data []byte, metadata map[string]string) (*BindingResponse, error) {
	const op = "InvokeBinding"
	if name == "" {
		return nil, invalidArg(op, "name", "is required")
	}
	if operation == "" {
		return nil, invalidArg(op, "operation", "is required")
	}
	req := &runtimev1.InvokeBindingRequest{Name: name, Operation: operation, Data: data, Metadata: metadata}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	resp, err := c.t.invokeBinding(ctx, req)
	if err != nil {
		return nil, err
	}
	return &BindingResponse{Data: resp.GetData(), Metadata: resp.GetMetadata()}, nil
}

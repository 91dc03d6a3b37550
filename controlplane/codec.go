package controlplane

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// exactCodec is gRPC's proto codec, except that it encodes every message
// into a buffer of exactly its size, owned by the garbage collector.
//
// Why: grpc-go encodes a message above 1 KiB into a buffer from its shared
// pool, whose sizes jump from 32 KiB to 1 MiB, and the pool keeps those
// buffers until two garbage collections have passed. A sidecar's first
// response (an app's 1,000 endpoints, ~100 KiB) thus took 1 MiB; after 5,000
// sidecars synced, ~200 MB of such buffers stayed in the pool (fleet
// simulator, docs/benchmarks.md). A control plane sends few large messages,
// so an allocation per message costs nothing measurable.
//
// Decoding is grpc-go's own. Safe for concurrent use.
type exactCodec struct{}

var _ encoding.CodecV2 = exactCodec{}

func (exactCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("proto: cannot encode %T: not a proto.Message", v)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (exactCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return encoding.GetCodecV2(exactCodec{}.Name()).Unmarshal(data, v)
}

func (exactCodec) Name() string { return "proto" }

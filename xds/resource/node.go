package resource

import (
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// NodeAppIDsKey is the key of the node metadata field, a list of strings,
// that carries the app ids a sidecar serves. The control plane sends a
// scoped resource only to nodes whose app ids intersect its scopes; a node
// without app ids receives everything (admin and debugging clients).
const NodeAppIDsKey = "app_ids"

// NodeMetadata returns node metadata carrying appIDs under NodeAppIDsKey.
func NodeMetadata(appIDs []string) *structpb.Struct {
	vals := make([]*structpb.Value, 0, len(appIDs))
	for _, id := range appIDs {
		vals = append(vals, structpb.NewStringValue(id))
	}
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		NodeAppIDsKey: structpb.NewListValue(&structpb.ListValue{Values: vals}),
	}}
}

// NodeAppIDs returns the app ids in the node's metadata; values that are not
// non-empty strings are ignored. It returns nil when there are none.
func NodeAppIDs(node *core.Node) []string {
	list := node.GetMetadata().GetFields()[NodeAppIDsKey].GetListValue().GetValues()
	var ids []string
	for _, v := range list {
		if s, ok := v.GetKind().(*structpb.Value_StringValue); ok && s.StringValue != "" {
			ids = append(ids, s.StringValue)
		}
	}
	return ids
}

// Package resource translates between Outrig's configuration messages
// (outrig.config.v1) and the Any values carried by delta xDS.
//
// Five resource types travel on the ADS stream, each named by a type URL:
// Component, Subscription and Policy (subscribed by wildcard, filtered by
// scopes), Endpoint (one per app instance, named "<app id>/<instance id>",
// subscribed on demand per app id as the collection "<app id>/*") and
// ServiceEndpoints (an app's whole endpoint set in one resource, named by
// the app id; the control plane no longer publishes it, but the server
// serves it for tools that want a state-of-the-world baseline).
//
// # Collections
//
// A subscribed name ending in "/*" (CollectionSuffix) is a glob collection,
// after the xDS convention: it stands for every resource whose name starts
// with the part before "*". A server answers it with the members it holds,
// then each member that appears, changes or goes; when it holds no member,
// it answers with the collection's own name in removed_resources.
//
// Versions are content hashes: Version hashes the deterministic protobuf
// encoding of a message, so every control-plane replica running the same
// binary computes the same version for the same content, and a client that
// reconnects to another replica with initial_resource_versions receives only
// what really differs.
//
// All functions are pure and safe for concurrent use.
package resource

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
)

// Type URLs of the resources served on the ADS stream.
const (
	typePrefix = "type.googleapis.com/"

	ComponentType        = typePrefix + "outrig.config.v1.Component"
	SubscriptionType     = typePrefix + "outrig.config.v1.Subscription"
	PolicyType           = typePrefix + "outrig.config.v1.Policy"
	ServiceEndpointsType = typePrefix + "outrig.config.v1.ServiceEndpoints"
	EndpointType         = typePrefix + "outrig.config.v1.Endpoint"
)

// WildcardTypes returns the types a sidecar subscribes to by wildcard, in
// the order a consumer should apply them (components before what refers to
// them).
func WildcardTypes() []string { return []string{ComponentType, PolicyType, SubscriptionType} }

// AllTypes returns every type URL served, wildcard types first.
func AllTypes() []string {
	return []string{ComponentType, PolicyType, SubscriptionType, EndpointType, ServiceEndpointsType}
}

// ErrUnknownType is returned for a type URL that is not one of ours.
var ErrUnknownType = errors.New("unknown resource type")

// Known reports whether typeURL is one of the Outrig resource types.
func Known(typeURL string) bool {
	switch typeURL {
	case ComponentType, SubscriptionType, PolicyType, ServiceEndpointsType, EndpointType:
		return true
	}
	return false
}

// New returns an empty message of the type named by typeURL.
func New(typeURL string) (proto.Message, error) {
	switch typeURL {
	case ComponentType:
		return &configv1.Component{}, nil
	case SubscriptionType:
		return &configv1.Subscription{}, nil
	case PolicyType:
		return &configv1.Policy{}, nil
	case ServiceEndpointsType:
		return &configv1.ServiceEndpoints{}, nil
	case EndpointType:
		return &configv1.Endpoint{}, nil
	}
	return nil, fmt.Errorf("type url %q: %w", typeURL, ErrUnknownType)
}

// TypeURL returns the type URL of m, or an error when m is not one of the
// resource messages.
func TypeURL(m proto.Message) (string, error) {
	switch m.(type) {
	case *configv1.Component:
		return ComponentType, nil
	case *configv1.Subscription:
		return SubscriptionType, nil
	case *configv1.Policy:
		return PolicyType, nil
	case *configv1.ServiceEndpoints:
		return ServiceEndpointsType, nil
	case *configv1.Endpoint:
		return EndpointType, nil
	}
	return "", fmt.Errorf("message %T: %w", m, ErrUnknownType)
}

// Name returns the resource name of m: the object's name, the app id of a
// ServiceEndpoints, or EndpointName(app id, instance id) of an Endpoint. It
// returns "" for other messages.
func Name(m proto.Message) string {
	switch v := m.(type) {
	case *configv1.Component:
		return v.GetName()
	case *configv1.Subscription:
		return v.GetName()
	case *configv1.Policy:
		return v.GetName()
	case *configv1.ServiceEndpoints:
		return v.GetAppId()
	case *configv1.Endpoint:
		return EndpointName(v.GetAppId(), v.GetInstanceId())
	}
	return ""
}

// Scopes returns the app ids m is restricted to; empty means every app.
// Endpoints are never scoped.
func Scopes(m proto.Message) []string {
	switch v := m.(type) {
	case *configv1.Component:
		return v.GetScopes()
	case *configv1.Subscription:
		return v.GetScopes()
	case *configv1.Policy:
		return v.GetScopes()
	}
	return nil
}

// Marshal returns the deterministic protobuf encoding of m (map entries
// sorted), the bytes that Encode wraps and Version hashes.
func Marshal(m proto.Message) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("marshal %T: %w", m, err)
	}
	return b, nil
}

// Encode wraps m in an Any with its type URL, using the deterministic
// encoding (anypb.New is not deterministic for maps).
func Encode(m proto.Message) (*anypb.Any, error) {
	typeURL, err := TypeURL(m)
	if err != nil {
		return nil, err
	}
	b, err := Marshal(m)
	if err != nil {
		return nil, err
	}
	return &anypb.Any{TypeUrl: typeURL, Value: b}, nil
}

// Decode unwraps an Any carrying one of the resource types. It fails
// with a clear error on a nil value, an unknown type URL or bytes that do not
// parse.
func Decode(a *anypb.Any) (proto.Message, error) {
	if a == nil {
		return nil, errors.New("resource is empty")
	}
	m, err := New(a.GetTypeUrl())
	if err != nil {
		return nil, err
	}
	if err := proto.Unmarshal(a.GetValue(), m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", a.GetTypeUrl(), err)
	}
	return m, nil
}

// Version returns the content version of m: the first 128 bits, in hex, of
// the SHA-256 of its deterministic encoding. Equal content gives equal
// versions across processes running the same protobuf runtime.
func Version(m proto.Message) (string, error) {
	b, err := Marshal(m)
	if err != nil {
		return "", err
	}
	return VersionOf(b), nil
}

// VersionOf returns the content version of an already encoded resource.
func VersionOf(encoded []byte) string {
	sum := sha256.Sum256(encoded)
	return hex.EncodeToString(sum[:16])
}

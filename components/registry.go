// Package components holds the component registry: the table from a
// component type and version (state.redis/v1, pubsub.kafka/v1, ...) to the
// factory that builds an uninitialised instance.
//
// A Registry is a value built in main and passed to the runtime; tests build
// their own. There is no package-level registry and nothing registers itself
// in init().
//
// Concurrency: registration happens before the runtime starts; after that a
// Registry is only read and is safe for concurrent use.
package components

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/dapr/components-contrib/bindings"
	"github.com/dapr/components-contrib/pubsub"
	"github.com/dapr/components-contrib/state"
	"github.com/dapr/kit/logger"
)

// Kind is the building block a component type belongs to, the prefix of its
// type name (state.redis → state).
type Kind string

const (
	KindState    Kind = "state"
	KindPubSub   Kind = "pubsub"
	KindBindings Kind = "bindings"
)

// Factories build uninitialised components. A factory must not do I/O: the
// runtime calls Init with the component's metadata afterwards.
type (
	StateFactory         func(logger.Logger) state.Store
	PubSubFactory        func(logger.Logger) pubsub.PubSub
	InputBindingFactory  func(logger.Logger) bindings.InputBinding
	OutputBindingFactory func(logger.Logger) bindings.OutputBinding
)

// Registry maps "kind.name/version" to factories.
type Registry struct {
	state  map[string]StateFactory
	pubsub map[string]PubSubFactory
	input  map[string]InputBindingFactory
	output map[string]OutputBindingFactory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		state:  map[string]StateFactory{},
		pubsub: map[string]PubSubFactory{},
		input:  map[string]InputBindingFactory{},
		output: map[string]OutputBindingFactory{},
	}
}

func key(typ, version string) string {
	if version == "" {
		version = "v1"
	}
	return strings.ToLower(typ) + "/" + strings.ToLower(version)
}

// RegisterState registers a state store type such as "state.redis" at version (default v1).
func (r *Registry) RegisterState(typ, version string, f StateFactory) { r.state[key(typ, version)] = f }

// RegisterPubSub registers a pub/sub type such as "pubsub.kafka".
func (r *Registry) RegisterPubSub(typ, version string, f PubSubFactory) {
	r.pubsub[key(typ, version)] = f
}

// RegisterInputBinding registers an input binding type such as "bindings.cron".
func (r *Registry) RegisterInputBinding(typ, version string, f InputBindingFactory) {
	r.input[key(typ, version)] = f
}

// RegisterOutputBinding registers an output binding type such as "bindings.http".
func (r *Registry) RegisterOutputBinding(typ, version string, f OutputBindingFactory) {
	r.output[key(typ, version)] = f
}

// ErrUnknownType is returned (wrapped) for a type/version nobody registered.
// Its text says where to look: a build can leave backends out (see
// cmd/outrig/components.go).
var ErrUnknownType = errors.New("unknown component type in this build (`outrig version` lists the types it has)")

// KindOf returns the building block of a type name, or an error naming it.
func KindOf(typ string) (Kind, error) {
	prefix, _, ok := strings.Cut(typ, ".")
	switch Kind(prefix) {
	case KindState, KindPubSub, KindBindings:
		if ok {
			return Kind(prefix), nil
		}
	}
	return "", fmt.Errorf("component type %q: want state.*, pubsub.* or bindings.*: %w", typ, ErrUnknownType)
}

// State returns the factory for a state type.
func (r *Registry) State(typ, version string) (StateFactory, error) {
	if f, ok := r.state[key(typ, version)]; ok {
		return f, nil
	}
	return nil, fmt.Errorf("state type %q version %q: %w", typ, version, ErrUnknownType)
}

// PubSub returns the factory for a pub/sub type.
func (r *Registry) PubSub(typ, version string) (PubSubFactory, error) {
	if f, ok := r.pubsub[key(typ, version)]; ok {
		return f, nil
	}
	return nil, fmt.Errorf("pubsub type %q version %q: %w", typ, version, ErrUnknownType)
}

// Bindings returns the input and output factories of a binding type; either
// may be nil, not both.
func (r *Registry) Bindings(typ, version string) (InputBindingFactory, OutputBindingFactory, error) {
	k := key(typ, version)
	in, out := r.input[k], r.output[k]
	if in == nil && out == nil {
		return nil, nil, fmt.Errorf("binding type %q version %q: %w", typ, version, ErrUnknownType)
	}
	return in, out, nil
}

// Has reports whether a type/version is registered in any kind.
func (r *Registry) Has(typ, version string) bool {
	k := key(typ, version)
	_, s := r.state[k]
	_, p := r.pubsub[k]
	_, i := r.input[k]
	_, o := r.output[k]
	return s || p || i || o
}

// Types lists the registered type/version keys, sorted.
func (r *Registry) Types() []string {
	var out []string
	for _, m := range []map[string]bool{keys(r.state), keys(r.pubsub), keys(r.input), keys(r.output)} {
		for k := range m {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return dedupe(out)
}

func keys[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

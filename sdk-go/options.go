package outrig

import "maps"

// Per-call options. Each call family has its own option interface, so the
// compiler rejects an option that means nothing for a call; options shared by
// several families (WithMetadata, WithContentType) return a concrete type
// that implements each of the interfaces it applies to. Option values are
// immutable and may be reused across calls and goroutines.

// InvokeOption configures Invoke.
type InvokeOption interface{ applyInvoke(*invokeOptions) }

// PublishOption configures Publish and BulkPublish.
type PublishOption interface{ applyPublish(*publishOptions) }

// StateOption configures a state call or one item of a bulk call or
// transaction. Not every option applies to every operation; passing one that
// does not (e.g. WithTTL to GetState) fails the call with ErrInvalidArgument.
type StateOption interface{ applyState(*stateOptions) }

// SubscribeOption configures Subscribe and StartSubscribe.
type SubscribeOption interface{ applySubscribe(*subscribeConfig) }

// MetadataOption carries metadata for a call; see WithMetadata.
type MetadataOption map[string]string

// WithMetadata adds metadata to a call: component metadata for state,
// pub/sub and subscriptions (e.g. partitionKey, ttlInSeconds), call metadata
// (headers) forwarded to the callee for Invoke. Several WithMetadata options
// merge, later keys winning. The map is not modified by the SDK; do not
// modify it while a call that uses it runs.
func WithMetadata(md map[string]string) MetadataOption { return MetadataOption(md) }

func (m MetadataOption) applyInvoke(o *invokeOptions)   { o.md.merge(m) }
func (m MetadataOption) applyPublish(o *publishOptions) { o.md.merge(m) }
func (m MetadataOption) applyState(o *stateOptions) {
	o.set |= optMetadata
	o.md.merge(m)
}
func (m MetadataOption) applySubscribe(o *subscribeConfig) { o.md.merge(m) }

// ContentTypeOption sets a payload content type; see WithContentType.
type ContentTypeOption string

// WithContentType sets the content type of the payload: the request data of
// Invoke, the event data of Publish (default application/json on the
// sidecar), the value of SaveState.
func WithContentType(ct string) ContentTypeOption { return ContentTypeOption(ct) }

func (c ContentTypeOption) applyInvoke(o *invokeOptions)   { o.contentType = string(c) }
func (c ContentTypeOption) applyPublish(o *publishOptions) { o.contentType = string(c) }
func (c ContentTypeOption) applyState(o *stateOptions) {
	o.set |= optContentType
	o.contentType = string(c)
}

// metadataBuilder merges metadata maps without modifying the caller's maps:
// the first map is used as is; a second one, or a single key set, copies.
type metadataBuilder struct {
	m     map[string]string
	owned bool
}

func (b *metadataBuilder) merge(m map[string]string) {
	if len(m) == 0 {
		return
	}
	if b.m == nil {
		b.m = m
		return
	}
	b.own()
	maps.Copy(b.m, m)
}

func (b *metadataBuilder) set(k, v string) {
	b.own()
	b.m[k] = v
}

func (b *metadataBuilder) own() {
	if b.owned {
		return
	}
	m := make(map[string]string, len(b.m)+2)
	maps.Copy(m, b.m)
	b.m, b.owned = m, true
}

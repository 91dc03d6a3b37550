package outrig

import (
	"context"
)

// Metadata describes what the sidecar serves for the calling app.
type Metadata struct {
	AppID          string
	RuntimeVersion string
	// Mode is "pod" (one app per sidecar) or "host" (several apps).
	Mode string
	// ConfigVersion is the version of the configuration snapshot in force.
	ConfigVersion string
	Components    []ComponentInfo
	Subscriptions []SubscriptionInfo
	Policies      []PolicyInfo
}

// ComponentInfo describes one loaded component.
type ComponentInfo struct {
	Name         string
	Type         string // e.g. state.redis
	Version      string
	Capabilities []string // e.g. ETAG, TRANSACTIONAL, TTL
	// Status is READY, or FAILED when the last Init failed (the previous
	// version keeps serving); Error says why.
	Status string
	Error  string
}

// SubscriptionInfo describes one subscription of the app.
type SubscriptionInfo struct {
	PubsubName      string
	Topic           string
	Kind            string // declarative | streaming
	DeadLetterTopic string
	Routes          []string
}

// PolicyInfo describes one governance policy in force.
type PolicyInfo struct {
	Name     string
	Targets  []string // kind/name/method, e.g. invoke/orders/Create
	Policies []string // e.g. rateLimit, circuitBreaker
}

// GetMetadata asks the sidecar what it serves for this app: components,
// subscriptions and policies in force.
func (c *Client) GetMetadata(ctx context.Context) (*Metadata, error) {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	resp, err := c.t.getMetadata(ctx)
	if err != nil {
		return nil, err
	}
	m := &Metadata{
		AppID:          resp.GetAppId(),
		RuntimeVersion: resp.GetRuntimeVersion(),
		Mode:           resp.GetMode(),
		ConfigVersion:  resp.GetConfigVersion(),
	}
	for _, x := range resp.GetComponents() {
		m.Components = append(m.Components, ComponentInfo{
			Name: x.GetName(), Type: x.GetType(), Version: x.GetVersion(),
			Capabilities: x.GetCapabilities(), Status: x.GetStatus(), Error: x.GetError(),
		})
	}
	for _, x := range resp.GetSubscriptions() {
		m.Subscriptions = append(m.Subscriptions, SubscriptionInfo{
			PubsubName: x.GetPubsubName(), Topic: x.GetTopic(), Kind: x.GetKind(),
			DeadLetterTopic: x.GetDeadLetterTopic(), Routes: x.GetRoutes(),
		})
	}
	for _, x := range resp.GetPolicies() {
		m.Policies = append(m.Policies, PolicyInfo{Name: x.GetName(), Targets: x.GetTargets(), Policies: x.GetPolicies()})
	}
	return m, nil
}

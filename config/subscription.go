package config

import (
	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"gopkg.in/yaml.v3"
)

// subscription decodes a Dapr Subscription: v2alpha1 routes with rules and a
// default, or v1alpha1's single route.
func (d *doc) subscription(n *yaml.Node, api string) *configv1.Subscription {
	s := &configv1.Subscription{}
	known := append(append([]field{}, topFields...),
		d.metadataFields(&s.Name),
		field{"spec", func(p string, v *yaml.Node) { d.subscriptionSpec(p, v, s, api) }},
		field{"scopes", func(p string, v *yaml.Node) { s.Scopes = d.strings(p, v) }},
	)
	d.fields("", n, known)
	if api == apiDaprV1 {
		// Validation speaks of spec.routes.default; v1alpha1 writes spec.route.
		d.renames["spec.routes.default"] = "spec.route"
		if l, ok := d.lines["spec.route"]; ok {
			d.lines["spec.routes.default"] = l
		}
		for i, f := range d.failed {
			if f == "spec.route" {
				d.failed[i] = "spec.routes.default"
			}
		}
	}
	d.addValidation(validateSubscription(s))
	return s
}

func (d *doc) subscriptionSpec(path string, n *yaml.Node, s *configv1.Subscription, api string) {
	known := []field{
		{"pubsubname", func(p string, v *yaml.Node) { s.PubsubName = d.str(p, v) }},
		{"topic", func(p string, v *yaml.Node) { s.Topic = d.str(p, v) }},
		{"deadLetterTopic", func(p string, v *yaml.Node) { s.DeadLetterTopic = d.str(p, v) }},
		{"metadata", func(p string, v *yaml.Node) { s.Metadata = d.stringMap(p, v) }},
		{"bulkSubscribe", skip}, // accepted, not implemented
		{"maxRedeliveries", func(p string, v *yaml.Node) { s.MaxRedeliveries = d.int32(p, v) }}, // Outrig extension
	}
	if api == apiDaprV1 {
		known = append(known, field{"route", func(p string, v *yaml.Node) { s.DefaultRoute = d.str(p, v) }})
	} else {
		known = append(known, field{"routes", func(p string, v *yaml.Node) { d.routes(p, v, s) }})
	}
	d.fields(path, n, known)
}

func (d *doc) routes(path string, n *yaml.Node, s *configv1.Subscription) {
	d.fields(path, n, []field{
		{"rules", func(p string, v *yaml.Node) {
			d.items(p, v, func(p string, v *yaml.Node) {
				r := &configv1.RouteRule{}
				d.fields(p, v, []field{
					{"match", func(p string, v *yaml.Node) { r.Match = d.str(p, v) }},
					{"path", func(p string, v *yaml.Node) { r.Path = d.str(p, v) }},
				})
				s.Rules = append(s.Rules, r)
			})
		}},
		{"default", func(p string, v *yaml.Node) { s.DefaultRoute = d.str(p, v) }},
	})
}

package config

import (
	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"gopkg.in/yaml.v3"
)

// component decodes a Component document (Dapr's or Outrig's; same shape).
func (d *doc) component(n *yaml.Node, api string) *configv1.Component {
	c := &configv1.Component{}
	known := append(append([]field{}, topFields...),
		d.metadataFields(&c.Name),
		field{"spec", func(p string, v *yaml.Node) { d.componentSpec(p, v, c) }},
		field{"scopes", func(p string, v *yaml.Node) { c.Scopes = d.strings(p, v) }},
	)
	if api == apiDaprV1 {
		known = append(known, field{"auth", skip}) // Dapr secret store: Outrig resolves secrets itself
	}
	d.fields("", n, known)
	d.addValidation(validateComponent(c))
	return c
}

func (d *doc) componentSpec(path string, n *yaml.Node, c *configv1.Component) {
	d.fields(path, n, []field{
		{"type", func(p string, v *yaml.Node) { c.Type = d.str(p, v) }},
		{"version", func(p string, v *yaml.Node) { c.Version = d.str(p, v) }},
		{"metadata", func(p string, v *yaml.Node) {
			d.items(p, v, func(p string, v *yaml.Node) { c.Metadata = append(c.Metadata, d.metadataItem(p, v)) })
		}},
		{"initTimeout", func(p string, v *yaml.Node) { c.InitTimeout = d.duration(p, v) }},
		{"ignoreErrors", func(p string, v *yaml.Node) { c.IgnoreErrors = d.boolean(p, v) }},
	})
}

func (d *doc) metadataItem(path string, n *yaml.Node) *configv1.MetadataItem {
	m := &configv1.MetadataItem{}
	var hasValue, hasRef bool
	d.fields(path, n, []field{
		{"name", func(p string, v *yaml.Node) { m.Name = d.str(p, v) }},
		{"value", func(p string, v *yaml.Node) { hasValue = true; m.Value = d.metaValue(p, v) }},
		{"secretKeyRef", func(p string, v *yaml.Node) {
			hasRef = true
			m.SecretKeyRef = &configv1.SecretKeyRef{}
			if r := resolve(v); r != nil && r.Kind == yaml.ScalarNode && !isNull(r) {
				// Do not echo the value: it may be the secret itself.
				d.bad(p, v, "must be a mapping with name and key")
				return
			}
			d.fields(p, v, []field{
				{"name", func(p string, v *yaml.Node) { m.SecretKeyRef.Name = d.str(p, v) }},
				{"key", func(p string, v *yaml.Node) { m.SecretKeyRef.Key = d.str(p, v) }},
			})
		}},
	})
	switch {
	case hasValue && hasRef:
		d.bad(path, n, "set either value or secretKeyRef, not both")
	case !hasValue && !hasRef && resolve(n) != nil && resolve(n).Kind == yaml.MappingNode:
		d.errorf(path, n, "needs value or secretKeyRef (use value: \"\" for an empty value)")
	}
	return m
}

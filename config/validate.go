package config

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Field paths in validation errors are the YAML paths (metadata.name,
// spec.rateLimit.rate, scopes[0]) so that errors read the same whether the
// object came from a file or over xDS.

const maxNameLen = 253

var (
	// objectName is the rule for names of components, subscriptions and
	// policies: DNS-label-like, lower case.
	objectName = regexp.MustCompile(`^[a-z0-9][-a-z0-9.]*$`)
	// appID is the rule for app ids (scopes, invoke targets, callers): like
	// objectName but any case and underscores allowed.
	appID       = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9._]*$`)
	versionRule = regexp.MustCompile(`^v[0-9]+([a-z]+[0-9]*)?$`)
)

// componentTypePrefixes are the building blocks Outrig runs components for.
var componentTypePrefixes = []string{"state.", "pubsub.", "bindings."}

// ValidateComponent checks c as the sidecar needs it. It returns every
// problem found, joined; each is an *Error naming the field and the bad value.
func ValidateComponent(c *configv1.Component) error { return validateComponent(c).join() }

// ValidateSubscription checks s; see ValidateComponent.
func ValidateSubscription(s *configv1.Subscription) error { return validateSubscription(s).join() }

// ValidatePolicy checks p; see ValidateComponent.
func ValidatePolicy(p *configv1.Policy) error { return validatePolicy(p).join() }

func validateComponent(c *configv1.Component) errorList {
	var errs errorList
	if c == nil {
		errs.add("", "component is nil")
		return errs
	}
	checkName(&errs, "metadata.name", c.GetName())
	switch t := c.GetType(); {
	case t == "":
		errs.add("spec.type", "required")
	case !hasComponentPrefix(t):
		errs.add("spec.type", "unsupported component type %q: want a %s type", t, strings.Join(componentTypePrefixes, ", "))
	case strings.ContainsAny(t, " \t\r\n"):
		errs.add("spec.type", "must not contain whitespace, got %q", t)
	}
	if v := c.GetVersion(); v != "" && !versionRule.MatchString(v) {
		errs.add("spec.version", "must look like v1 or v2alpha1, got %q", v)
	}
	checkDuration(&errs, "spec.initTimeout", c.GetInitTimeout())
	seen := map[string]int{}
	for i, m := range c.GetMetadata() {
		p := fmt.Sprintf("spec.metadata[%d]", i)
		if m == nil {
			errs.add(p, "must not be empty")
			continue
		}
		if m.GetName() == "" {
			errs.add(p+".name", "required")
		} else {
			key := strings.ToLower(m.GetName())
			if first, dup := seen[key]; dup {
				errs.add(p+".name", "duplicate metadata name %q (also spec.metadata[%d]; names are case-insensitive)", m.GetName(), first)
			} else {
				seen[key] = i
			}
		}
		if ref := m.GetSecretKeyRef(); ref != nil {
			if m.GetValue() != "" {
				errs.add(p, "set either value or secretKeyRef, not both")
			}
			if ref.GetName() == "" {
				errs.add(p+".secretKeyRef.name", "required")
			}
			if ref.GetKey() == "" {
				errs.add(p+".secretKeyRef.key", "required")
			}
		}
	}
	checkScopes(&errs, c.GetScopes())
	return errs
}

func hasComponentPrefix(t string) bool {
	for _, p := range componentTypePrefixes {
		if strings.HasPrefix(t, p) && len(t) > len(p) {
			return true
		}
	}
	return false
}

func validateSubscription(s *configv1.Subscription) errorList {
	var errs errorList
	if s == nil {
		errs.add("", "subscription is nil")
		return errs
	}
	checkName(&errs, "metadata.name", s.GetName())
	if s.GetPubsubName() == "" {
		errs.add("spec.pubsubname", "required")
	} else {
		checkName(&errs, "spec.pubsubname", s.GetPubsubName())
	}
	checkTopic(&errs, "spec.topic", s.GetTopic(), true)
	for i, r := range s.GetRules() {
		p := fmt.Sprintf("spec.routes.rules[%d]", i)
		if r == nil {
			errs.add(p, "must not be empty")
			continue
		}
		if r.GetPath() == "" {
			errs.add(p+".path", "required")
		}
	}
	if len(s.GetRules()) == 0 && s.GetDefaultRoute() == "" {
		errs.add("spec.routes.default", "required when no rules are given")
	}
	if dl := s.GetDeadLetterTopic(); dl != "" {
		checkTopic(&errs, "spec.deadLetterTopic", dl, false)
		if dl == s.GetTopic() {
			errs.add("spec.deadLetterTopic", "must differ from spec.topic, got %q", dl)
		}
	}
	for k := range s.GetMetadata() {
		if k == "" {
			errs.add("spec.metadata", "keys must not be empty")
		}
	}
	if n := s.GetMaxRedeliveries(); n < 0 {
		errs.add("spec.maxRedeliveries", "must be >= 0, got %d", n)
	}
	checkScopes(&errs, s.GetScopes())
	return errs
}

func checkTopic(errs *errorList, field, topic string, required bool) {
	switch {
	case topic == "" && required:
		errs.add(field, "required")
	case strings.ContainsAny(topic, " \t\r\n"):
		errs.add(field, "must not contain whitespace, got %q", topic)
	}
}

func checkName(errs *errorList, field, name string) {
	switch {
	case name == "":
		errs.add(field, "required")
	case len(name) > maxNameLen:
		errs.add(field, "must be at most %d characters, got %d", maxNameLen, len(name))
	case !objectName.MatchString(name):
		errs.add(field, "must be lower-case letters, digits, '-' and '.', starting with a letter or digit, got %q", name)
	}
}

func checkAppID(errs *errorList, field, id string) {
	switch {
	case id == "":
		errs.add(field, "required")
	case len(id) > maxNameLen:
		errs.add(field, "must be at most %d characters, got %d", maxNameLen, len(id))
	case !appID.MatchString(id):
		errs.add(field, "must be an app id of letters, digits, '-', '_' and '.', starting with a letter or digit, got %q", id)
	}
}

func checkScopes(errs *errorList, scopes []string) {
	for i, s := range scopes {
		checkAppID(errs, fmt.Sprintf("scopes[%d]", i), s)
	}
}

// checkDuration accepts nil (unset) and valid durations >= 0.
func checkDuration(errs *errorList, field string, d *durationpb.Duration) {
	if d == nil {
		return
	}
	if err := d.CheckValid(); err != nil {
		errs.add(field, "invalid duration: %v", err)
		return
	}
	if v := d.AsDuration(); v < 0 {
		errs.add(field, "must be >= 0, got %v", v)
	}
}

// checkFraction accepts values in [0, 1]; NaN fails.
func checkFraction(errs *errorList, field string, f float64) {
	if !(f >= 0 && f <= 1) {
		errs.add(field, "must be between 0 and 1, got %v", f)
	}
}

func checkNonNegative(errs *errorList, field string, f float64) {
	if !(f >= 0) {
		errs.add(field, "must be >= 0, got %v", f)
	}
}

func checkNonNegativeInt(errs *errorList, field string, n int32) {
	if n < 0 {
		errs.add(field, "must be >= 0, got %d", n)
	}
}

// checkGlob accepts patterns of path.Match.
func checkGlob(errs *errorList, field, pattern string) bool {
	if _, err := path.Match(pattern, ""); err != nil {
		errs.add(field, "invalid glob %q: %v", pattern, err)
		return false
	}
	return true
}

func isGlob(s string) bool { return strings.ContainsAny(s, `*?[\`) }

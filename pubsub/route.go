package pubsub

import (
	"fmt"
	"strconv"
	"strings"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	runtimev1 "github.com/outrig/outrig/api/gen/outrig/runtime/v1"
)

// Router picks the path of an event from a declarative Subscription's
// rules: the first rule whose match holds, else the default route.
//
// Match expressions are a small subset of CEL: comparisons
// `event.<attr> == "value"` or `!=`, joined by `&&`, where attr is id,
// source, type, subject or topic. An empty match always holds. Anything
// else is rejected when the Subscription is applied.
type Router struct {
	rules []compiledRule
	def   string
}

type compiledRule struct {
	conds []cond
	path  string
}

type cond struct {
	attr  string
	value string
	neq   bool
}

// NewRouter compiles a Subscription's rules.
func NewRouter(sub *configv1.Subscription) (*Router, error) {
	r := &Router{def: sub.GetDefaultRoute()}
	for i, rule := range sub.GetRules() {
		conds, err := parseMatch(rule.GetMatch())
		if err != nil {
			return nil, fmt.Errorf("rules[%d].match: %w", i, err)
		}
		r.rules = append(r.rules, compiledRule{conds: conds, path: rule.GetPath()})
	}
	return r, nil
}

func parseMatch(expr string) ([]cond, error) {
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return nil, nil
	}
	var out []cond
	for _, part := range strings.Split(expr, "&&") {
		part = strings.TrimSpace(part)
		op := "=="
		lhs, rhs, ok := strings.Cut(part, "==")
		if !ok {
			op = "!="
			lhs, rhs, ok = strings.Cut(part, "!=")
		}
		if !ok {
			return nil, fmt.Errorf("%q: want event.<attr> == \"value\"", part)
		}
		attr, isEvent := strings.CutPrefix(strings.TrimSpace(lhs), "event.")
		if !isEvent {
			return nil, fmt.Errorf("%q: left side must be event.<attr>", part)
		}
		switch attr {
		case "id", "source", "type", "subject", "topic":
		default:
			return nil, fmt.Errorf("%q: unknown attribute %q (want id, source, type, subject or topic)", part, attr)
		}
		val, err := strconv.Unquote(strings.TrimSpace(rhs))
		if err != nil {
			return nil, fmt.Errorf("%q: right side must be a quoted string", part)
		}
		out = append(out, cond{attr: attr, value: val, neq: op == "!="})
	}
	return out, nil
}

// Route returns the path for ev ("" when nothing matches and there is no default).
func (r *Router) Route(ev *runtimev1.TopicEvent) string {
	if r == nil {
		return ""
	}
	for _, rule := range r.rules {
		if rule.matches(ev) {
			return rule.path
		}
	}
	return r.def
}

func (c compiledRule) matches(ev *runtimev1.TopicEvent) bool {
	for _, cd := range c.conds {
		var got string
		switch cd.attr {
		case "id":
			got = ev.Id
		case "source":
			got = ev.Source
		case "type":
			got = ev.Type
		case "subject":
			got = ev.Metadata["cloudevent.subject"]
		case "topic":
			got = ev.Topic
		}
		if (got == cd.value) == cd.neq {
			return false
		}
	}
	return true
}

package runtime

import (
	"context"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"

	"github.com/outrig/outrig/config"
	"github.com/outrig/outrig/governance"
	"github.com/outrig/outrig/pubsub"
)

// Type URLs of the configuration resources the runtime consumes.
var (
	ComponentType    = typeURL(&configv1.Component{})
	SubscriptionType = typeURL(&configv1.Subscription{})
	PolicyType       = typeURL(&configv1.Policy{})
)

func typeURL(m proto.Message) string {
	return "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName())
}

// Apply validates and applies one change of one resource type, as the xDS
// client's handler: it returns an error per rejected resource name (the
// client NACKs those) while the valid ones are applied. A component whose
// Init fails is rejected and its previous version keeps serving. Apply is
// called serially.
func (r *Runtime) Apply(typeURL string, updated map[string]proto.Message, removed []string) map[string]error {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	rejected := map[string]error{}
	next := make(map[string]proto.Message, len(r.resources[typeURL])+len(updated))
	for k, v := range r.resources[typeURL] {
		next[k] = v
	}
	for _, name := range removed {
		delete(next, name)
	}
	for _, name := range sortedKeys(updated) {
		if err := validate(typeURL, name, updated[name]); err != nil {
			rejected[name] = err
			continue
		}
		next[name] = updated[name]
	}
	if len(updated) == 0 && len(removed) == 0 {
		return nil
	}
	cand := map[string]map[string]proto.Message{}
	for t, m := range r.resources {
		cand[t] = m
	}
	cand[typeURL] = next
	r.rebuild(cand, rejected)
	// What serves is what was accepted: reverted names keep their old spec.
	for name := range rejected {
		if old, ok := r.resources[typeURL][name]; ok {
			next[name] = old
		} else {
			delete(next, name)
		}
	}
	r.resources[typeURL] = next
	return rejected
}

func validate(typeURL, name string, m proto.Message) error {
	var err error
	switch v := m.(type) {
	case *configv1.Component:
		if v.GetName() != name {
			return fmt.Errorf("resource name %q differs from component name %q", name, v.GetName())
		}
		err = config.ValidateComponent(v)
	case *configv1.Subscription:
		if v.GetName() != name {
			return fmt.Errorf("resource name %q differs from subscription name %q", name, v.GetName())
		}
		if err = config.ValidateSubscription(v); err == nil {
			err = pubsub.CheckSubscription(v)
		}
	case *configv1.Policy:
		if v.GetName() != name {
			return fmt.Errorf("resource name %q differs from policy name %q", name, v.GetName())
		}
		err = config.ValidatePolicy(v)
	default:
		return fmt.Errorf("unexpected resource %T for type %s", m, typeURL)
	}
	return err
}

func inScope(scopes []string, appID string) bool {
	if len(scopes) == 0 {
		return true
	}
	for _, s := range scopes {
		if s == appID {
			return true
		}
	}
	return false
}

// rebuild builds a snapshot per app from cand and swaps it in. Components
// that fail to initialise for any app are added to rejected and their
// previous instances are kept.
func (r *Runtime) rebuild(cand map[string]map[string]proto.Message, rejected map[string]error) {
	ctx := context.Background()
	// Phase 1: initialise new and changed component instances for every app.
	fresh := map[string]map[string]*instance{} // app -> name -> new instance
	for _, id := range r.order {
		fresh[id] = map[string]*instance{}
	}
	for _, name := range sortedKeys(cand[ComponentType]) {
		c := cand[ComponentType][name].(*configv1.Component)
		for _, id := range r.order {
			if !inScope(c.GetScopes(), id) {
				continue
			}
			cur := r.apps[id].cur.p.Load()
			if old := cur.instances[name]; old != nil && proto.Equal(old.spec, c) {
				continue
			}
			in, err := r.newInstance(ctx, c, id)
			if err != nil {
				if c.GetIgnoreErrors() {
					r.log.Warn("component left out (ignoreErrors)", "component", name, "app", id, "err", err)
					continue
				}
				rejected[name] = fmt.Errorf("component %q for app %q: %w", name, id, err)
				break
			}
			fresh[id][name] = in
		}
		if _, bad := rejected[name]; bad {
			for _, id := range r.order {
				if in := fresh[id][name]; in != nil {
					_ = in.close()
					delete(fresh[id], name)
				}
			}
		}
	}
	r.version++
	version := strconv.Itoa(r.version)
	for _, id := range r.order {
		a := r.apps[id]
		cur := a.cur.p.Load()
		s := newSnapshot(version)
		for _, name := range sortedKeys(cand[ComponentType]) {
			c := cand[ComponentType][name].(*configv1.Component)
			if !inScope(c.GetScopes(), id) {
				continue
			}
			in := fresh[id][name]
			if in == nil {
				in = cur.instances[name] // unchanged, or kept because the new version was rejected
			}
			if in != nil {
				s.add(name, in)
			}
		}
		for _, name := range sortedKeys(cand[SubscriptionType]) {
			sub := cand[SubscriptionType][name].(*configv1.Subscription)
			if inScope(sub.GetScopes(), id) { // cand holds only validated versions
				s.Subscriptions = append(s.Subscriptions, sub)
			}
		}
		var pols []*configv1.Policy
		for _, name := range sortedKeys(cand[PolicyType]) {
			p := cand[PolicyType][name].(*configv1.Policy)
			if inScope(p.GetScopes(), id) {
				pols = append(pols, p)
			}
		}
		tbl, err := governance.Compile(pols, cur.Policies, r.govDeps)
		if err != nil {
			for _, p := range pols {
				if _, changed := cand[PolicyType][p.GetName()]; changed {
					rejected[p.GetName()] = fmt.Errorf("compile policies: %w", err)
				}
			}
			tbl, pols = cur.Policies, cur.PolicyList
		}
		s.Policies, s.PolicyList = tbl, pols
		r.install(a, s)
	}
}

func (s *Snapshot) add(name string, in *instance) {
	s.instances[name] = in
	switch {
	case in.state != nil:
		s.State[name] = in.state
	case in.pubsub != nil:
		s.PubSub[name] = in.pubsub
	}
	if in.output != nil {
		s.Output[name] = in.output
	}
	if in.input != nil {
		s.Input[name] = in.input
	}
}

// install swaps s in, moves subscriptions and binding consumers onto its
// components, and closes the instances only the old snapshot held once it
// has drained.
func (r *Runtime) install(a *App, s *Snapshot) {
	old, prevDrained, mine := a.swap(s)
	if err := a.Subs.Update(s.PubSub, s.Subscriptions); err != nil {
		r.log.Error("subscriptions", "app", a.ID, "err", err)
	}
	a.reattach(s)
	var gone []*instance
	if old != nil {
		for name, in := range old.instances {
			if s.instances[name] != in {
				gone = append(gone, in)
			}
		}
	}
	go func() {
		<-prevDrained
		if old != nil {
			<-old.zero
		}
		for _, in := range gone {
			if err := in.close(); err != nil {
				r.log.Warn("closing replaced component", "app", a.ID, "component", in.spec.GetName(), "err", err)
			}
		}
		close(mine)
	}()
}

package runtime

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"

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
	var policyUpdates map[string]proto.Message
	if typeURL == PolicyType {
		policyUpdates = updated
	}
	r.rebuild(cand, policyUpdates, rejected)
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
func (r *Runtime) rebuild(cand map[string]map[string]proto.Message, policyUpdates map[string]proto.Message, rejected map[string]error) {
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
	snaps := make(map[string]*Snapshot, len(r.order))
	for _, id := range r.order {
		cur := r.apps[id].cur.p.Load()
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
		snaps[id] = s
	}
	r.compilePolicies(snaps, cand[PolicyType], policyUpdates, rejected)
	for _, id := range r.order {
		r.install(r.apps[id], snaps[id])
	}
}

// compilePolicies compiles, for each app, the policies of pols in scope into
// its snapshot. Validation has passed already; what can still fail is the
// Redis component of a cluster rate limit (missing, out of scope for the
// app, not a Redis component, bad connection metadata). A policy that fails
// for any app and was updated by this change (its name is in updates) is
// rejected: its previous version, or none, is compiled instead for every
// app. A policy that fails otherwise (a component change broke it) is left
// out of that app's table and logged; it comes back into force with the
// first change that makes it compile again.
func (r *Runtime) compilePolicies(snaps map[string]*Snapshot, pols map[string]proto.Message, updates map[string]proto.Message, rejected map[string]error) {
	for pass := 0; ; pass++ {
		failed := map[string]error{}
		leftOut := map[string][]string{} // app -> policy names
		for _, id := range r.order {
			s, cur := snaps[id], r.apps[id].cur.p.Load()
			var list []*configv1.Policy
			for _, name := range sortedKeys(pols) {
				if p := pols[name].(*configv1.Policy); inScope(p.GetScopes(), id) {
					list = append(list, p)
				}
			}
			tbl, err := governance.Compile(list, cur.Policies, r.governanceDeps(s))
			s.Policies, s.PolicyList = tbl, list
			if err == nil {
				continue
			}
			in := map[string]bool{}
			for _, n := range tbl.Policies() {
				in[n] = true
			}
			s.PolicyList = nil
			for _, p := range list {
				if in[p.GetName()] {
					s.PolicyList = append(s.PolicyList, p)
					continue
				}
				if _, seen := failed[p.GetName()]; !seen {
					failed[p.GetName()] = fmt.Errorf("app %q: %w", id, policyError(err, p.GetName()))
				}
				leftOut[id] = append(leftOut[id], p.GetName())
			}
		}
		revert := false
		if pass == 0 {
			for name, err := range failed {
				if _, updated := updates[name]; !updated {
					continue
				}
				if !revert {
					pols, revert = maps.Clone(pols), true
				}
				rejected[name] = err
				if old, ok := r.resources[PolicyType][name]; ok {
					pols[name] = old
				} else {
					delete(pols, name)
				}
			}
		}
		if !revert {
			for _, id := range r.order {
				for _, name := range leftOut[id] {
					if _, rej := rejected[name]; !rej {
						r.log.Error("policy left out: it does not compile with the components in force; it applies again once it does",
							"app", id, "policy", name, "err", failed[name])
					}
				}
			}
			return
		}
	}
}

// policyError picks the error of one policy out of Compile's joined errors.
func policyError(err error, name string) error {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	prefix := fmt.Sprintf("policy %q:", name)
	for _, e := range list {
		if strings.HasPrefix(e.Error(), prefix) {
			return e
		}
	}
	return err
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

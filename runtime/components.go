package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	cbindings "github.com/dapr/components-contrib/bindings"
	"github.com/dapr/components-contrib/metadata"
	cpubsub "github.com/dapr/components-contrib/pubsub"
	cstate "github.com/dapr/components-contrib/state"
	"github.com/dapr/kit/logger"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"

	"github.com/outrig/outrig/bindings"
	"github.com/outrig/outrig/components"
	"github.com/outrig/outrig/pubsub"
	"github.com/outrig/outrig/state"
)

const defaultInitTimeout = 30 * time.Second

// BrokerType is the in-memory broker hosted by the control plane; its
// brokerAddress defaults to the sidecar's control plane.
const BrokerType = "pubsub.outrig-broker"

// instance is one initialised component for one app.
type instance struct {
	spec   *configv1.Component
	kind   components.Kind
	state  *state.Store
	pubsub *pubsub.PubSub
	output *bindings.Output
	input  *bindings.Input

	props map[string]string     // resolved metadata (secrets included)
	redis redis.UniversalClient // for cluster rate limits, created on first use (govredis.go)
}

func (in *instance) close() error {
	var errs []error
	if in.redis != nil {
		errs = append(errs, in.redis.Close())
	}
	if in.state != nil {
		errs = append(errs, in.state.Close())
	}
	if in.pubsub != nil {
		errs = append(errs, in.pubsub.Close())
	}
	switch {
	case in.input != nil:
		errs = append(errs, in.input.Close()) // closes a shared output too
	case in.output != nil:
		errs = append(errs, in.output.Close())
	}
	return errors.Join(errs...)
}

// SecretEnv is the environment variable holding a secretKeyRef's value.
func SecretEnv(ref *configv1.SecretKeyRef) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' {
				return r - 'a' + 'A'
			}
			if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
				return r
			}
			return '_'
		}, s)
	}
	return "OUTRIG_SECRET_" + clean(ref.GetName()) + "_" + clean(ref.GetKey())
}

// properties resolves a component's metadata for one app: secret
// references from the environment, {appID} substituted, and Dapr's default
// consumerID (the app id) for pub/sub.
func properties(c *configv1.Component, appID, cpAddr string, kind components.Kind) (map[string]string, error) {
	props := make(map[string]string, len(c.GetMetadata())+1)
	for _, m := range c.GetMetadata() {
		v := m.GetValue()
		if ref := m.GetSecretKeyRef(); ref != nil {
			env := SecretEnv(ref)
			val, ok := os.LookupEnv(env)
			if !ok {
				return nil, fmt.Errorf("metadata %q: secret %s/%s not found (set %s)", m.GetName(), ref.GetName(), ref.GetKey(), env)
			}
			v = val
		}
		props[m.GetName()] = strings.ReplaceAll(v, "{appID}", appID)
	}
	if kind == components.KindPubSub {
		if _, ok := props["consumerID"]; !ok {
			props["consumerID"] = appID
		}
	}
	if c.GetType() == BrokerType && props["brokerAddress"] == "" {
		// With replicas (a,b,...) every sidecar given the same list uses the
		// first one's broker; each replica's broker is its own memory.
		first, _, _ := strings.Cut(cpAddr, ",")
		props["brokerAddress"] = strings.TrimSpace(first)
	}
	return props, nil
}

// newInstance builds and initialises a component for one app.
func (r *Runtime) newInstance(ctx context.Context, c *configv1.Component, appID string) (*instance, error) {
	kind, err := components.KindOf(c.GetType())
	if err != nil {
		return nil, err
	}
	props, err := properties(c, appID, r.cpAddr, kind)
	if err != nil {
		return nil, err
	}
	timeout := defaultInitTimeout
	if d := c.GetInitTimeout(); d != nil && d.AsDuration() > 0 {
		timeout = d.AsDuration()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	base := metadata.Base{Name: c.GetName(), Properties: props}
	log := logger.NewLogger("outrig.component." + c.GetName())
	in := &instance{spec: proto.Clone(c).(*configv1.Component), kind: kind, props: props}
	switch kind {
	case components.KindState:
		f, err := r.registry.State(c.GetType(), c.GetVersion())
		if err != nil {
			return nil, err
		}
		impl := f(log)
		if err := initWithin(ctx, func(ctx context.Context) error { return impl.Init(ctx, cstate.Metadata{Base: base}) }); err != nil {
			return nil, fmt.Errorf("init %s: %w", c.GetType(), err)
		}
		in.state = state.New(c.GetName(), c.GetType(), appID, props[state.KeyPrefixMetadata], impl)
	case components.KindPubSub:
		f, err := r.registry.PubSub(c.GetType(), c.GetVersion())
		if err != nil {
			return nil, err
		}
		impl := f(log)
		if err := initWithin(ctx, func(ctx context.Context) error { return impl.Init(ctx, cpubsub.Metadata{Base: base}) }); err != nil {
			return nil, fmt.Errorf("init %s: %w", c.GetType(), err)
		}
		in.pubsub = pubsub.New(c.GetName(), c.GetType(), appID, impl)
	case components.KindBindings:
		if err := r.newBinding(ctx, in, c, base, log); err != nil {
			return nil, err
		}
	}
	return in, nil
}

func (r *Runtime) newBinding(ctx context.Context, in *instance, c *configv1.Component, base metadata.Base, log logger.Logger) error {
	inF, outF, err := r.registry.Bindings(c.GetType(), c.GetVersion())
	if err != nil {
		return err
	}
	dir := strings.ToLower(base.Properties["direction"])
	wantIn := inF != nil && (dir == "" || strings.Contains(dir, "input"))
	wantOut := outF != nil && (dir == "" || strings.Contains(dir, "output"))
	md := cbindings.Metadata{Base: base}
	if wantIn {
		impl := inF(log)
		if err := initWithin(ctx, func(ctx context.Context) error { return impl.Init(ctx, md) }); err != nil {
			return fmt.Errorf("init %s: %w", c.GetType(), err)
		}
		in.input = bindings.NewInput(c.GetName(), c.GetType(), impl, r.log)
		if o, ok := impl.(cbindings.OutputBinding); ok && wantOut {
			in.output = bindings.NewOutput(c.GetName(), c.GetType(), o)
			wantOut = false
		}
		if err := in.input.Start(); err != nil {
			if in.output == nil && !wantOut {
				_ = impl.Close()
				return err
			}
			// An input+output binding without input settings still serves output.
			r.log.Warn("input binding not started", "component", c.GetName(), "err", err)
			in.input = nil
		}
	}
	if wantOut {
		impl := outF(log)
		if err := initWithin(ctx, func(ctx context.Context) error { return impl.Init(ctx, md) }); err != nil {
			if in.input != nil {
				_ = in.input.Close()
			}
			return fmt.Errorf("init %s: %w", c.GetType(), err)
		}
		in.output = bindings.NewOutput(c.GetName(), c.GetType(), impl)
	}
	return nil
}

// initWithin runs a component's Init but stops waiting at ctx's deadline:
// some components ignore their context while dialing.
func initWithin(ctx context.Context, f func(context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("init did not finish: %w", ctx.Err())
	}
}

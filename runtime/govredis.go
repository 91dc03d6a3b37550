package runtime

import (
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance"
)

// Cluster-wide rate limits (Policy rateLimit.scope cluster) keep their
// shared bucket in the Redis server of a component named by
// rateLimit.redisComponent. The runtime resolves that name, per app and per
// config snapshot, to a go-redis client of the component instance in the
// snapshot being built:
//
//   - the client is created on first use from the instance's resolved
//     metadata (secrets and {appID} substituted) and then shared by every
//     policy that names the component;
//   - it lives as long as the instance: while the component is unchanged,
//     config pushes resolve the same client (so the policies keep their
//     chains); when the component changes or is removed, the new instance
//     gets a new client and the old one is closed with the old instance,
//     after the snapshots holding it have drained (no call in flight uses it).

// redisComponent reports whether a component type speaks to a Redis server
// configured by the usual redisHost/redisPassword/... metadata.
func redisComponent(typ string) bool { return strings.HasSuffix(typ, ".redis") }

// governanceDeps returns the runtime's governance dependencies for
// compiling the policies of snapshot s: when the sidecar did not provide a
// Redis resolver, cluster rate limits resolve components of s.
func (r *Runtime) governanceDeps(s *Snapshot) governance.Deps {
	deps := r.govDeps
	if deps.Redis == nil {
		deps.Redis = func(name string) (redis.Scripter, error) {
			in := s.instances[name]
			if in == nil {
				return nil, fmt.Errorf("no component %q is loaded for this app (missing, out of scope or failed): %w", name, errkind.ErrNotFound)
			}
			return in.governanceRedis()
		}
	}
	return deps
}

// governanceRedis returns the instance's client for cluster rate limits,
// creating it on first use. Called under the runtime's apply lock only.
func (in *instance) governanceRedis() (redis.Scripter, error) {
	if !redisComponent(in.spec.GetType()) {
		return nil, fmt.Errorf("component %q is %s, not a Redis component (state.redis, pubsub.redis, ...): %w",
			in.spec.GetName(), in.spec.GetType(), errkind.ErrInvalidArgument)
	}
	if in.redis == nil {
		c, err := newRedisClient(in.props)
		if err != nil {
			return nil, fmt.Errorf("component %q: %w", in.spec.GetName(), err)
		}
		in.redis = c
	}
	return in.redis, nil
}

// newRedisClient builds a go-redis client from Dapr Redis component
// metadata: redisHost (host:port, comma separated for a cluster),
// redisUsername, redisPassword, redisDB, redisType (node or cluster),
// failover with sentinelMasterName (sentinelUsername, sentinelPassword),
// enableTLS, dialTimeout, readTimeout, writeTimeout (Go durations),
// poolSize and redisMaxRetries. Other keys are ignored. It does not dial:
// the first rate-limited call does.
func newRedisClient(p map[string]string) (redis.UniversalClient, error) {
	host := strings.TrimSpace(p["redisHost"])
	if host == "" {
		return nil, errkind.Required("metadata redisHost")
	}
	o := &redis.UniversalOptions{
		Addrs:                 strings.Split(host, ","),
		Username:              p["redisUsername"],
		Password:              p["redisPassword"],
		SentinelUsername:      p["sentinelUsername"],
		SentinelPassword:      p["sentinelPassword"],
		ContextTimeoutEnabled: true, // the call's deadline bounds the limiter's round trip
	}
	for i := range o.Addrs {
		o.Addrs[i] = strings.TrimSpace(o.Addrs[i])
	}
	var err error
	if o.DB, err = intProp(p, "redisDB"); err != nil {
		return nil, err
	}
	if o.PoolSize, err = intProp(p, "poolSize"); err != nil {
		return nil, err
	}
	if o.MaxRetries, err = intProp(p, "redisMaxRetries"); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		key string
		dst *time.Duration
	}{{"dialTimeout", &o.DialTimeout}, {"readTimeout", &o.ReadTimeout}, {"writeTimeout", &o.WriteTimeout}} {
		if v := p[f.key]; v != "" {
			if *f.dst, err = time.ParseDuration(v); err != nil {
				return nil, errkind.InvalidArgument("metadata "+f.key, "must be a duration such as 500ms, got %q", v)
			}
		}
	}
	tlsOn, err := boolProp(p, "enableTLS")
	if err != nil {
		return nil, err
	}
	if tlsOn {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if cert, key := p["clientCert"], p["clientKey"]; cert != "" || key != "" {
			pair, err := tls.X509KeyPair([]byte(cert), []byte(key))
			if err != nil {
				return nil, errkind.InvalidArgument("metadata clientCert", "client certificate and key: %v", err)
			}
			o.TLSConfig.Certificates = []tls.Certificate{pair}
		}
	}
	failover, err := boolProp(p, "failover")
	if err != nil {
		return nil, err
	}
	switch typ := p["redisType"]; {
	case failover:
		if o.MasterName = p["sentinelMasterName"]; o.MasterName == "" {
			return nil, errkind.Required("metadata sentinelMasterName (failover true)")
		}
		return redis.NewFailoverClient(o.Failover()), nil
	case typ == "" || strings.EqualFold(typ, "node"):
		if len(o.Addrs) != 1 {
			return nil, errkind.InvalidArgument("metadata redisHost", "redisType node takes one host:port, got %q", host)
		}
		return redis.NewClient(o.Simple()), nil
	case strings.EqualFold(typ, "cluster"):
		return redis.NewClusterClient(o.Cluster()), nil
	default:
		return nil, errkind.InvalidArgument("metadata redisType", "must be node or cluster, got %q", typ)
	}
}

func intProp(p map[string]string, key string) (int, error) {
	v := p[key]
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errkind.InvalidArgument("metadata "+key, "must be a whole number >= 0, got %q", v)
	}
	return n, nil
}

func boolProp(p map[string]string, key string) (bool, error) {
	v := p[key]
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errkind.InvalidArgument("metadata "+key, "must be true or false, got %q", v)
	}
	return b, nil
}

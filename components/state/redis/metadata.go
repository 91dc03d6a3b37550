package redis

import (
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Metadata keys, the same as components-contrib's state.redis. Keys of
// contrib's that this store does not act on (query indexes, pub/sub
// settings) are ignored; settings it cannot honour (cluster, Sentinel) fail
// Init with an error naming them.
const (
	mdHost             = "redisHost"
	mdUsername         = "redisUsername"
	mdPassword         = "redisPassword"
	mdDB               = "redisDB"
	mdType             = "redisType"
	mdFailover         = "failover"
	mdEnableTLS        = "enableTLS"
	mdMaxRetries       = "redisMaxRetries"
	mdMinRetry         = "redisMinRetryInterval"
	mdMaxRetry         = "redisMaxRetryInterval"
	mdDialTimeout      = "dialTimeout"
	mdReadTimeout      = "readTimeout"
	mdWriteTimeout     = "writeTimeout"
	mdPoolSize         = "poolSize"
	mdMinIdleConns     = "minIdleConns"
	mdPoolTimeout      = "poolTimeout"
	mdIdleTimeout      = "idleTimeout"
	mdMaxConnAge       = "maxConnAge"
	mdTTLInSeconds     = "ttlInSeconds"
	defaultDialTimeout = 5 * time.Second
)

// settings are the parsed metadata.
type settings struct {
	opts       goredis.Options
	defaultTTL int // seconds; 0: none
}

// parseMetadata turns component metadata into client options. Durations
// take Go syntax ("500ms", "2s") or a whole number of milliseconds, as in
// contrib; -1 disables a timeout or retries where go-redis allows it.
func parseMetadata(md map[string]string) (settings, error) {
	var s settings
	p := parser{md: md}
	s.opts.Addr = strings.TrimSpace(md[mdHost])
	if s.opts.Addr == "" {
		return s, fmt.Errorf("metadata %s is required (host:port)", mdHost)
	}
	if strings.Contains(s.opts.Addr, ",") {
		return s, fmt.Errorf("metadata %s %q: several hosts (cluster) are not supported by this state store", mdHost, s.opts.Addr)
	}
	if t := strings.ToLower(md[mdType]); t != "" && t != "node" {
		return s, fmt.Errorf("metadata %s %q: only \"node\" is supported by this state store", mdType, md[mdType])
	}
	if p.bool(mdFailover) {
		return s, fmt.Errorf("metadata %s: Sentinel failover is not supported by this state store", mdFailover)
	}
	s.opts.Username = md[mdUsername]
	s.opts.Password = md[mdPassword]
	s.opts.DB = p.int(mdDB, 0)
	if p.bool(mdEnableTLS) {
		s.opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} //nolint:gosec // contrib's enableTLS semantics
	}
	s.opts.MaxRetries = p.int(mdMaxRetries, 3)
	s.opts.MinRetryBackoff = p.duration(mdMinRetry, 8*time.Millisecond)
	s.opts.MaxRetryBackoff = p.duration(mdMaxRetry, 512*time.Millisecond)
	s.opts.DialTimeout = p.duration(mdDialTimeout, defaultDialTimeout)
	s.opts.ReadTimeout = p.duration(mdReadTimeout, 3*time.Second)
	s.opts.WriteTimeout = p.duration(mdWriteTimeout, 3*time.Second)
	s.opts.PoolSize = p.int(mdPoolSize, 0)
	s.opts.MinIdleConns = p.int(mdMinIdleConns, 0)
	s.opts.PoolTimeout = p.duration(mdPoolTimeout, 0)
	s.opts.ConnMaxIdleTime = p.duration(mdIdleTimeout, 0)
	s.opts.ConnMaxLifetime = p.duration(mdMaxConnAge, 0)
	s.defaultTTL = p.int(mdTTLInSeconds, 0)
	// Calls are bounded by the caller's context (its deadline cuts socket
	// reads and writes short), not only by the fixed timeouts above.
	s.opts.ContextTimeoutEnabled = true
	// No CLIENT SETINFO on every new connection.
	s.opts.DisableIdentity = true
	if p.err != nil {
		return s, p.err
	}
	if s.opts.DB < 0 {
		return s, fmt.Errorf("metadata %s %d: want 0 or more", mdDB, s.opts.DB)
	}
	if s.defaultTTL < -1 {
		return s, fmt.Errorf("metadata %s %d: want -1 or more", mdTTLInSeconds, s.defaultTTL)
	}
	return s, nil
}

// parser reads typed values, keeping the first error.
type parser struct {
	md  map[string]string
	err error
}

func (p *parser) fail(key, v, want string) {
	if p.err == nil {
		p.err = fmt.Errorf("metadata %s %q: want %s", key, v, want)
	}
}

func (p *parser) int(key string, def int) int {
	v := strings.TrimSpace(p.md[key])
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.fail(key, v, "a whole number")
		return def
	}
	return n
}

func (p *parser) bool(key string) bool {
	v := strings.TrimSpace(p.md[key])
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(key, v, "true or false")
	}
	return b
}

func (p *parser) duration(key string, def time.Duration) time.Duration {
	v := strings.TrimSpace(p.md[key])
	if v == "" {
		return def
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return -1
		}
		return time.Duration(n) * time.Millisecond
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.fail(key, v, `a duration such as "2s" or a number of milliseconds`)
		return def
	}
	return d
}

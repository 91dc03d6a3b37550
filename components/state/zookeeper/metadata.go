package zookeeper

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Metadata keys: contrib's state.zookeeper keys, plus juteMaxBuffer.
const (
	mdServers           = "servers"
	mdSessionTimeout    = "sessionTimeout"
	mdMaxBufferSize     = "maxBufferSize"
	mdMaxConnBufferSize = "maxConnBufferSize"
	mdKeyPrefixPath     = "keyPrefixPath"
	// mdJuteMaxBuffer is the server's jute.maxbuffer (bytes): the largest
	// request it accepts. A write that cannot fit is refused before it is
	// sent, because the server answers an oversized request by dropping the
	// connection, failing every call in flight on it.
	mdJuteMaxBuffer = "juteMaxBuffer"

	defaultSessionTimeout = 10 * time.Second
	defaultBufferSize     = 1 << 20
	defaultJuteMaxBuffer  = 0xfffff // ZooKeeper's default: 1 MiB - 1
	// requestOverhead bounds a write request's bytes besides the path and
	// the data: headers, version, ACL and flags (well under this).
	requestOverhead = 256
)

type settings struct {
	servers           []string
	sessionTimeout    time.Duration
	maxBufferSize     int
	maxConnBufferSize int
	prefix            string
	juteMaxBuffer     int
}

func parseMetadata(md map[string]string) (settings, error) {
	s := settings{sessionTimeout: defaultSessionTimeout, maxBufferSize: defaultBufferSize,
		maxConnBufferSize: defaultBufferSize, juteMaxBuffer: defaultJuteMaxBuffer}
	for _, srv := range strings.Split(md[mdServers], ",") {
		if srv = strings.TrimSpace(srv); srv != "" {
			s.servers = append(s.servers, srv)
		}
	}
	if len(s.servers) == 0 {
		return s, fmt.Errorf("metadata %s is required (host:port[,host:port...])", mdServers)
	}
	if v := strings.TrimSpace(md[mdSessionTimeout]); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return s, fmt.Errorf("metadata %s %q: want a positive duration such as \"10s\"", mdSessionTimeout, v)
		}
		s.sessionTimeout = d
	}
	for _, f := range []struct {
		key string
		dst *int
	}{{mdMaxBufferSize, &s.maxBufferSize}, {mdMaxConnBufferSize, &s.maxConnBufferSize}, {mdJuteMaxBuffer, &s.juteMaxBuffer}} {
		v := strings.TrimSpace(md[f.key])
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return s, fmt.Errorf("metadata %s %q: want a positive number of bytes", f.key, v)
		}
		*f.dst = n
	}
	p, err := cleanPrefix(strings.TrimSpace(md[mdKeyPrefixPath]))
	if err != nil {
		return s, err
	}
	s.prefix = p
	return s, nil
}

// Package zkstore keeps a replicated control plane's shared state in
// ZooKeeper: the configuration (written by a loader, read by every
// replica) and the registry of app instances (each instance written by the
// replica that holds its lease, read by every replica).
//
// # Layout
//
// Under the root path of the store URL (zk://host:port[,host:port]/root):
//
//	<root>/config                         data: hash of the loaded set (the generation)
//	<root>/config/components/<name>       data: outrig.config.v1.Component (deterministic protobuf)
//	<root>/config/policies/<name>         data: outrig.config.v1.Policy
//	<root>/config/subscriptions/<name>    data: outrig.config.v1.Subscription
//	<root>/instances/<app id>             container node
//	<root>/instances/<app id>/<instance id>~<sequence>
//	                                      ephemeral, sequential; data: outrig.config.v1.Endpoint
//	<root>/replicas/<session id>          ephemeral; data: the replica's address
//
// Names are escaped (escapeName) so that any id is a valid node name.
//
// An instance znode is ephemeral in the session of the replica that holds
// the instance's lease: when that replica dies, ZooKeeper removes the node
// when the session expires. Each write of an instance creates a new
// sequential node (then deletes the writer's previous one), so no replica
// ever deletes a node another replica wrote; readers take, per instance,
// the node with the highest sequence. A replica that takes over an
// instance (its sidecar failed over) writes its own node next to the old
// one; the content is the same, so readers publish nothing.
//
// Readers delay the removal of an instance whose last node vanished because
// its writer's session died (no <root>/replicas node for it any more) by a
// grace period: the sidecar re-registers with another replica well within
// it, and callers never see its endpoint go and come back.
package zkstore

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// Options configure a Store. Zero values take the defaults.
type Options struct {
	// SessionTimeout of the ZooKeeper session: how long after a replica
	// vanished its instance nodes disappear. Default 4s (ZooKeeper's
	// minimum with its default tickTime of 2s).
	SessionTimeout time.Duration
	// ConnectTimeout bounds Open's wait for a first session. Default 10s.
	ConnectTimeout time.Duration
	Logger         *slog.Logger
}

// Store is an open connection to a store. It is safe for concurrent use.
//
// Lifecycle: Open, then any of LoadConfig, ConfigWatcher, Instances; Close
// ends the session (the replica's instance nodes vanish at once).
type Store struct {
	conn *zk.Conn
	root string
	log  *slog.Logger

	mu       sync.Mutex
	sessions []chan struct{} // signalled on every new session
}

// ParseURL splits zk://host:port[,host:port]/root into servers and root.
func ParseURL(raw string) (servers []string, root string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("store %q: %w", raw, err)
	}
	if u.Scheme != "zk" {
		return nil, "", fmt.Errorf("store %q: scheme must be zk (zk://host:port/root)", raw)
	}
	for _, h := range strings.Split(u.Host, ",") {
		if h = strings.TrimSpace(h); h != "" {
			servers = append(servers, h)
		}
	}
	if len(servers) == 0 {
		return nil, "", fmt.Errorf("store %q: no ZooKeeper server", raw)
	}
	root = path.Clean("/" + strings.Trim(u.Path, "/"))
	if root == "/" {
		return nil, "", fmt.Errorf("store %q: a root path is required (zk://host:port/outrig)", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, "", fmt.Errorf("store %q: query, fragment and user info are not supported", raw)
	}
	return servers, root, nil
}

// Open connects to the store at rawURL, waits for a session and creates the
// layout's folders.
func Open(rawURL string, opts Options) (*Store, error) {
	servers, root, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = 4 * time.Second
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Store{root: root, log: opts.Logger.With("component", "zkstore", "root", root)}
	hasSession := make(chan struct{}, 1)
	conn, _, err := zk.Connect(servers, opts.SessionTimeout,
		zk.WithLogger(zkLogger{s.log}), zk.WithLogInfo(false),
		zk.WithEventCallback(func(ev zk.Event) {
			if ev.Type != zk.EventSession {
				return
			}
			switch ev.State {
			case zk.StateHasSession:
				select {
				case hasSession <- struct{}{}:
				default:
				}
				s.signalSession()
			case zk.StateExpired:
				s.log.Warn("ZooKeeper session expired; a new one is being established")
			}
		}))
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", rawURL, err)
	}
	s.conn = conn
	select {
	case <-hasSession:
	case <-time.After(opts.ConnectTimeout):
		conn.Close()
		return nil, fmt.Errorf("store %s: no ZooKeeper session within %v", rawURL, opts.ConnectTimeout)
	}
	for _, p := range []string{root, s.configPath(), s.instancesPath(), s.replicasPath()} {
		if err := s.ensure(p); err != nil {
			conn.Close()
			return nil, err
		}
	}
	for _, k := range configKinds() {
		if err := s.ensure(s.kindPath(k)); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close ends the session.
func (s *Store) Close() { s.conn.Close() }

// SessionID returns the current ZooKeeper session id (0 while there is none).
func (s *Store) SessionID() int64 { return s.conn.SessionID() }

// onSession returns a channel signalled (capacity 1) whenever a new session
// is established.
func (s *Store) onSession() <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.sessions = append(s.sessions, ch)
	s.mu.Unlock()
	return ch
}

func (s *Store) signalSession() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.sessions {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (s *Store) configPath() string        { return s.root + "/config" }
func (s *Store) kindPath(k kind) string    { return s.configPath() + "/" + k.dir }
func (s *Store) instancesPath() string     { return s.root + "/instances" }
func (s *Store) appPath(app string) string { return s.instancesPath() + "/" + escapeName(app) }
func (s *Store) replicasPath() string      { return s.root + "/replicas" }
func (s *Store) replicaPath(session int64) string {
	return fmt.Sprintf("%s/%016x", s.replicasPath(), session)
}

// ensure creates a persistent node (and its parents) if missing.
func (s *Store) ensure(p string) error {
	if p == "/" || p == "" {
		return nil
	}
	ok, _, err := s.conn.Exists(p)
	if err != nil {
		return fmt.Errorf("store: exists %s: %w", p, err)
	}
	if ok {
		return nil
	}
	if err := s.ensure(path.Dir(p)); err != nil {
		return err
	}
	if _, err := s.conn.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("store: create %s: %w", p, err)
	}
	return nil
}

// RegisterReplica creates this replica's ephemeral node (data: addr) in the
// current session; readers use it to tell a replica that died from one that
// deleted an instance. Call it again after a new session.
func (s *Store) RegisterReplica(addr string) error {
	sess := s.conn.SessionID()
	if sess == 0 {
		return errors.New("store: no session")
	}
	_, err := s.conn.Create(s.replicaPath(sess), []byte(addr), zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
	if err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("store: register replica: %w", err)
	}
	return nil
}

// escapeName turns an id into a node name: letters, digits, '-', '_' and
// '.' stay, every other byte becomes %XX (so '/' and the separator '~'
// never appear), and the names "." and ".." are escaped entirely.
func escapeName(s string) string {
	var b strings.Builder
	all := s == "." || s == ".."
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !all && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// unescapeName reverses escapeName.
func unescapeName(s string) (string, error) {
	out, err := url.PathUnescape(s)
	if err != nil {
		return "", fmt.Errorf("node name %q: %w", s, err)
	}
	return out, nil
}

// zkLogger sends go-zookeeper's messages to slog at debug level (its
// reconnection chatter would otherwise flood the log).
type zkLogger struct{ log *slog.Logger }

func (l zkLogger) Printf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}

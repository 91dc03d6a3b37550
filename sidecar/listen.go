package sidecar

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// DefaultListen is where the app API listens by default: a Unix socket
// only the sidecar's user can open.
const DefaultListen = "unix:///tmp/outrig.sock"

// listen opens the app API listener: unix:///abs/path (mode 0600; a stale
// socket file is replaced) or host:port (TCP; loopback unless the operator
// names another address).
func listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		if path == "" {
			return nil, fmt.Errorf("--listen %q: empty socket path", addr)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("--listen %q: %w", addr, err)
		}
		if fi, err := os.Lstat(path); err == nil {
			if fi.Mode()&os.ModeSocket == 0 {
				return nil, fmt.Errorf("--listen %q: %s exists and is not a socket", addr, path)
			}
			_ = os.Remove(path) // stale socket of a previous run
		}
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("--listen %q: %w", addr, err)
		}
		if err := os.Chmod(path, 0o600); err != nil {
			l.Close()
			return nil, fmt.Errorf("--listen %q: chmod: %w", addr, err)
		}
		return l, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("--listen %q: want unix:///path or host:port: %w", addr, err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: %w", addr, err)
	}
	return l, nil
}

// Package conformance runs one suite per building block through the public
// API (Go SDK → sidecar → component → real server) against every component
// of that kind. Each subtest is named after its component, so
// `go test ./conformance -run 'TestState/mysql'` runs one.
//
// The backends are started by scripts/backends.sh; a backend that does not
// answer fails its tests (it never skips them).
package conformance

import (
	"net"
	"testing"
	"time"

	"github.com/outrig/outrig/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// requireBackend fails the test when addr does not accept connections.
func requireBackend(t testing.TB, name, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("backend %s at %s is not reachable (%v): run `scripts/backends.sh up %s`", name, addr, err, name)
	}
	c.Close()
}

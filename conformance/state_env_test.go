package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outrig/outrig/internal/testenv"
	outrig "github.com/outrig/outrig/sdk-go"
)

// stateTarget is one state component under test: its example YAML in
// examples/components and the backend it needs.
type stateTarget struct {
	name    string // subtest name: redis, mysql, mongodb, zookeeper
	backend string // scripts/backends.sh name
	addr    string // the backend's address in the example YAML
	file    string // examples/components/<file>
	store   string // component name in that file
	// prepare, if set, readies the backend before the sidecar starts.
	prepare func(t *testing.T)
	// maxValue, if set, is the largest value the store accepts (bytes),
	// below 1 MiB: larger ones must fail with INVALID_ARGUMENT.
	maxValue int
}

func stateTargets() []stateTarget {
	return []stateTarget{
		{name: "redis", backend: "redis", addr: "127.0.0.1:6379", file: "state-redis.yaml", store: "state-redis"},
		{name: "mysql", backend: "mysql", addr: "127.0.0.1:3306", file: "state-mysql.yaml", store: "state-mysql",
			prepare: func(t *testing.T) { mysqlBinarySchema(t, "127.0.0.1:3306", "outrig_state") }},
		{name: "mongodb", backend: "mongodb", addr: "127.0.0.1:27017", file: "state-mongodb.yaml", store: "state-mongodb"},
		// ZooKeeper takes at most jute.maxbuffer (1 MiB - 1 by default) per
		// request, path and headers included.
		{name: "zookeeper", backend: "zookeeper", addr: "127.0.0.1:2181", file: "state-zookeeper.yaml", store: "state-zookeeper",
			maxValue: 1_000_000},
	}
}

// exampleYAML reads examples/components/file and applies the replacements
// (old, new pairs), failing if one of the olds is not in the file.
func exampleYAML(t testing.TB, file string, replace ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", "components", file))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("%s does not contain %q", file, replace[i])
		}
		s = strings.ReplaceAll(s, replace[i], replace[i+1])
	}
	return s
}

// startStateSidecar starts a sidecar whose only component is yaml and
// waits until the component named store is READY; it returns an SDK client
// and the store's declared capabilities.
func startStateSidecar(t testing.TB, store, yaml string, extra ...string) (*testenv.Sidecar, *outrig.Client, []string) {
	t.Helper()
	dir := t.TempDir()
	testenv.WriteFile(t, filepath.Join(dir, "store.yaml"), yaml)
	sc := testenv.StartSidecar(t, "conformance", append([]string{"--resources", dir}, extra...)...)
	c := testenv.Client(t, sc.Sock)
	var caps []string
	testenv.Eventually(t, "component "+store+" READY", 30*time.Second, func() error {
		if b, _ := os.ReadFile(sc.Log); strings.Contains(string(b), "configuration rejected") {
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, "configuration rejected") {
					t.Fatalf("the sidecar rejected the component: %s", line)
				}
			}
		}
		md, err := c.GetMetadata(context.Background())
		if err != nil {
			return err
		}
		for _, ci := range md.Components {
			if ci.Name == store {
				if ci.Status != "READY" {
					return fmt.Errorf("status %s: %s", ci.Status, ci.Error)
				}
				caps = ci.Capabilities
				return nil
			}
		}
		return fmt.Errorf("not loaded (components: %+v)", md.Components)
	})
	return sc, c, caps
}

func hasCap(caps []string, c string) bool { return slices.Contains(caps, c) }

// keyPrefix returns a prefix unique to this run and test, so that reruns
// against the same servers never see each other's keys.
func keyPrefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "c" + hex.EncodeToString(b) + "-"
}

// ctxT is a context bounded well inside the test's own timeout.
func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

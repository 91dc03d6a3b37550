package outrig

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The SDK must stay thin: an application importing it must not pull in the
// sidecar's backend clients, contrib components or the xDS control plane.
// This runs `go list -deps` on the SDK (with and without its tests, with the
// workspace and with the SDK module alone) and checks every non-standard
// package against a deny list and an allow list of module paths.
func TestSDKDependenciesStayThin(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	denied := []string{
		"github.com/dapr/components-contrib",
		"github.com/dapr/",
		"github.com/IBM/sarama",
		"github.com/Shopify/sarama",
		"rocketmq",
		"go.mongodb.org",
		"github.com/redis/go-redis",
		"github.com/envoyproxy/go-control-plane",
		"github.com/outrig/outrig/", // the root module (sidecar) — except api and sdk-go, allowed below
	}
	allowed := []string{
		"github.com/outrig/outrig/api/",
		"github.com/outrig/outrig/sdk-go",
		"google.golang.org/grpc",
		"google.golang.org/protobuf",
		"google.golang.org/genproto/googleapis/rpc",
		"golang.org/x/net",
		"golang.org/x/sys",
		"golang.org/x/text",
	}
	for _, mode := range []struct {
		name string
		args []string
		env  []string
	}{
		{"workspace", []string{"list", "-deps", "-f", listFormat, "."}, nil},
		{"workspace with tests", []string{"list", "-deps", "-test", "-f", listFormat, "."}, nil},
		{"module alone", []string{"list", "-deps", "-f", listFormat, "."}, []string{"GOWORK=off"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			cmd := exec.Command(goBin, mode.args...)
			cmd.Env = append(os.Environ(), mode.env...)
			out, err := cmd.Output()
			if err != nil {
				var stderr string
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("go %s: %v\n%s", strings.Join(mode.args, " "), err, stderr)
			}
			var pkgs []string
			for _, line := range strings.Split(string(out), "\n") {
				// With -test, packages built for the test read "p [p.test]".
				if p, _, _ := strings.Cut(strings.TrimSpace(line), " "); p != "" {
					pkgs = append(pkgs, p)
				}
			}
			if !contains(pkgs, "google.golang.org/grpc") || !contains(pkgs, "github.com/outrig/outrig/api/gen/outrig/runtime/v1") {
				t.Fatalf("go list output lacks the SDK's known dependencies; got %d packages:\n%s", len(pkgs), out)
			}
			for _, p := range pkgs {
				if hasPrefix(p, allowed) {
					continue
				}
				if d := containsAny(p, denied); d != "" {
					t.Errorf("the SDK depends on %s (denied: %s)", p, d)
				} else {
					t.Errorf("the SDK depends on %s, which is not on the allow list; keep the SDK thin or extend the list deliberately", p)
				}
			}
		})
	}
}

const listFormat = `{{if not .Standard}}{{.ImportPath}}{{"\n"}}{{end}}`

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func containsAny(s string, subs []string) string {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return x
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

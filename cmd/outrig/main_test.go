package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestHelpListsEveryFlagWithDefault(t *testing.T) {
	for _, c := range commands() {
		if c.name == "version" {
			continue
		}
		var out, errb bytes.Buffer
		if code := run([]string{c.name, "--help"}, &out, &errb); code != 0 {
			t.Errorf("%s --help: exit %d", c.name, code)
		}
		help := errb.String()
		flags := strings.Count(help, "\n  --")
		if (flags == 0 && c.name != "validate") || strings.Count(help, "(default ") != flags {
			t.Errorf("%s --help: %d flags, %d defaults:\n%s", c.name, flags, strings.Count(help, "(default "), help)
		}
	}
}

func TestUnknownCommandAndBadFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"nosuch"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "nosuch"`) {
		t.Errorf("unknown command: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"sidecar", "--no-such-flag"}, &out, &errb); code != 2 {
		t.Errorf("bad flag: exit %d", code)
	}
	errb.Reset()
	if code := run([]string{"sidecar", "--app-id", "a", "--mode", "cluster"}, &out, &errb); code != 2 {
		t.Errorf("bad mode: exit %d", code)
	}
	errb.Reset()
	if code := run([]string{"sidecar", "--app-id", "a", "--busy-poll", "-1ms"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "--busy-poll -1ms") {
		t.Errorf("negative --busy-poll: exit %d, %q", code, errb.String())
	}
}

func TestValidateExamples(t *testing.T) {
	for _, dir := range []string{"../../examples/resources", "../../examples/resources-real", "../../examples/demo-extra"} {
		var out, errb bytes.Buffer
		if code := run([]string{"validate", dir}, &out, &errb); code != 0 {
			t.Errorf("validate %s: exit %d\n%s%s", dir, code, out.String(), errb.String())
		}
	}
}

// validate rejects a component type this build lacks, naming the component
// and the type, and keeps reporting the rest.
func TestValidateRejectsTypesNotInThisBuild(t *testing.T) {
	dir := t.TempDir()
	yaml := "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: %s\nspec:\n  type: %s\n  version: v1\n  metadata: []\n"
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), fmt.Appendf(nil, yaml, "queue", "pubsub.nosuch"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.yaml"), fmt.Appendf(nil, yaml, "cache", "state.redis"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"validate", dir}, &out, &errb); code == 0 {
		t.Fatalf("validate accepted an unknown type:\n%s", out.String())
	}
	if !strings.Contains(out.String(), `component "queue": spec.type: "pubsub.nosuch" version "v1": unknown component type in this build`) {
		t.Errorf("output does not name the component and its type:\n%s", out.String())
	}
	if strings.Contains(out.String(), `"cache"`) {
		t.Errorf("state.redis is in this build:\n%s", out.String())
	}
}

// The default build has every backend's components; `version` lists them
// (a build with -tags outrig_no_<backend> lists fewer, see components.go).
func TestVersionListsEveryComponentType(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 {
		t.Fatalf("version: exit %d: %s", code, errb.String())
	}
	for _, typ := range []string{"state.in-memory", "state.redis", "state.mysql", "state.mongodb", "state.zookeeper",
		"pubsub.in-memory", "pubsub.outrig-broker", "pubsub.redis", "pubsub.kafka", "pubsub.rocketmq",
		"bindings.redis", "bindings.mysql", "bindings.kafka", "bindings.rocketmq", "bindings.http", "bindings.cron"} {
		if !slices.Contains(strings.Fields(out.String()), typ+"/v1") {
			t.Errorf("version does not list %s:\n%s", typ, out.String())
		}
	}
}

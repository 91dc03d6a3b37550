package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
)

func names3(s *Set) []string {
	var out []string
	for n := range s.Components {
		out = append(out, "Component/"+n)
	}
	for n := range s.Subscriptions {
		out = append(out, "Subscription/"+n)
	}
	for n := range s.Policies {
		out = append(out, "Policy/"+n)
	}
	sort.Strings(out)
	return out
}

func TestLoadDirValid(t *testing.T) {
	set, err := LoadDir("testdata/valid")
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	want := []string{
		"Component/events", "Component/orders",
		"Policy/orders-create-limit", "Policy/state-cluster-limit",
		"Subscription/order-events", "Subscription/payment-events",
	}
	if d := cmp.Diff(want, names3(set)); d != "" {
		t.Errorf("objects (-want +got):\n%s", d)
	}
}

// TestLoadDirInvalid is what `outrig validate testdata/invalid` prints.
func TestLoadDirInvalid(t *testing.T) {
	set, err := LoadDir("testdata/invalid")
	if set == nil || len(names3(set)) != 0 {
		t.Errorf("LoadDir(invalid) set = %v, want empty and non-nil", set)
	}
	want := strings.TrimSpace(`
testdata/invalid/component.yaml:4: metadata.name: must be lower-case letters, digits, '-' and '.', starting with a letter or digit, got "Orders"
testdata/invalid/component.yaml:7: spec.verison: unknown field "verison" (known: type, version, metadata, initTimeout, ignoreErrors)
testdata/invalid/component.yaml:8: spec.initTimeout: must be a duration such as "500ms" or "2s", got "5"
testdata/invalid/component.yaml:12: spec.metadata[1].name: duplicate metadata name "redishost" (also spec.metadata[0]; names are case-insensitive)
testdata/invalid/component.yaml:14: spec.metadata[2]: set either value or secretKeyRef, not both
testdata/invalid/component.yaml:17: spec.metadata[3]: needs value or secretKeyRef (use value: "" for an empty value)
testdata/invalid/component.yaml:18: scopes[0]: must be an app id of letters, digits, '-', '_' and '.', starting with a letter or digit, got "bad app"
testdata/invalid/policy.yaml:6: spec.targets[0].kind: must be one of invoke, state, pubsub, binding, got "grpc"
testdata/invalid/policy.yaml:6: spec.targets[0].method: invalid glob "Create[": syntax error in pattern
testdata/invalid/policy.yaml:7: spec.rateLimit.rate: must be > 0, got 0
testdata/invalid/policy.yaml:7: spec.rateLimit.redisComponent: required with scope cluster
testdata/invalid/policy.yaml:8: spec.bulkhead.maxConcurrent: must be > 0, got 0
testdata/invalid/policy.yaml:9: spec.randomDrop.fraction: must be between 0 and 1, got 1.5
testdata/invalid/policy.yaml:10: spec.loadBalancer.policy: must be one of round_robin, p2c, least_connections, hrw, ring_hash, got "random"
testdata/invalid/policy.yaml:13: kind: kind Resiliency is not supported; use an outrig.dev/v1alpha1 Policy
testdata/invalid/syntax.yml:8: invalid YAML: did not find expected node content`)
	if err == nil {
		t.Fatal("LoadDir(invalid) = nil error")
	}
	if d := cmp.Diff(want, err.Error()); d != "" {
		t.Errorf("errors (-want +got):\n%s", d)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Error("an error message shows a metadata value")
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	compA  = "apiVersion: outrig.dev/v1alpha1\nkind: Component\nmetadata: {name: a}\nspec: {type: state.memory}\n"
	compB  = "apiVersion: outrig.dev/v1alpha1\nkind: Component\nmetadata: {name: b}\nspec: {type: state.memory}\n"
	polA   = "apiVersion: outrig.dev/v1alpha1\nkind: Policy\nmetadata: {name: a}\nspec: {targets: [{kind: state, name: a}]}\n"
	subA   = "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: a}\nspec: {pubsubname: p, topic: t, routes: {default: /t}}\n"
	badDoc = "apiVersion: outrig.dev/v1alpha1\nkind: Component\nmetadata: {name: c}\nspec: {type: state.memory, oops: 1}\n"
)

func TestLoadDir(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string // objects loaded
		errs  []string // error lines, with the temp dir as "DIR"
	}{
		{
			name:  "recursive, sorted, yml and yaml, other files and dot names ignored",
			files: map[string]string{"x/b.yml": compB, "a.yaml": compA + "---\n" + polA, "notes.txt": "junk", ".hidden/c.yaml": badDoc, ".d.yaml": badDoc, "z/sub.yaml": subA},
			want:  []string{"Component/a", "Component/b", "Policy/a", "Subscription/a"},
		},
		{
			name:  "a file with an error contributes nothing",
			files: map[string]string{"a.yaml": compA, "b.yaml": compB + "---\n" + badDoc},
			want:  []string{"Component/a"},
			errs:  []string{`DIR/b.yaml:9: spec.oops: unknown field "oops" (known: type, version, metadata, initTimeout, ignoreErrors)`},
		},
		{
			name:  "duplicate across files names both files; the later file is dropped",
			files: map[string]string{"1.yaml": compA, "2.yaml": compB + "---\n" + strings.Replace(compA, "{name: a}", "\n  name: a", 1)},
			want:  []string{"Component/a"},
			errs:  []string{`DIR/2.yaml:9: metadata.name: duplicate Component name "a" (first defined at DIR/1.yaml:3)`},
		},
		{
			name:  "same name in different kinds is fine",
			files: map[string]string{"1.yaml": compA, "2.yaml": polA, "3.yaml": subA},
			want:  []string{"Component/a", "Policy/a", "Subscription/a"},
		},
		{
			name:  "errors of several files are all reported",
			files: map[string]string{"1.yaml": badDoc, "2.yaml": "kind: Component\n", "3.yaml": compA},
			want:  []string{"Component/a"},
			errs: []string{
				`DIR/1.yaml:4: spec.oops: unknown field "oops" (known: type, version, metadata, initTimeout, ignoreErrors)`,
				`DIR/2.yaml:1: apiVersion: required`,
			},
		},
		{
			name:  "empty directory",
			files: map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			set, err := LoadDir(dir)
			if d := cmp.Diff(tt.want, names3(set)); d != "" {
				t.Errorf("objects (-want +got):\n%s", d)
			}
			var got []string
			for _, e := range Errors(err) {
				got = append(got, strings.ReplaceAll(e.Error(), dir, "DIR"))
			}
			if d := cmp.Diff(tt.errs, got); d != "" {
				t.Errorf("errors (-want +got):\n%s", d)
			}
		})
	}
}

func TestLoadDirMissing(t *testing.T) {
	set, err := LoadDir(filepath.Join(t.TempDir(), "nope"))
	if set == nil || err == nil || !errors.Is(err, fs.ErrNotExist) || strings.Count(err.Error(), "nope") != 1 {
		t.Fatalf("LoadDir(missing) = %v, %v; want an empty Set and a not-exist error", set, err)
	}
}

func TestMerge(t *testing.T) {
	a, err := ParseBytes("a.yaml", []byte(compA+"---\n"+polA))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseBytes("b.yaml", []byte(compB+"---\n"+subA))
	if err != nil {
		t.Fatal(err)
	}
	var s Set // the zero Set is usable
	if err := s.Merge(a); err != nil {
		t.Fatal(err)
	}
	if err := s.Merge(b); err != nil {
		t.Fatal(err)
	}
	if err := s.Merge(nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"Component/a", "Component/b", "Policy/a", "Subscription/a"}
	if d := cmp.Diff(want, names3(&s)); d != "" {
		t.Errorf("after Merge (-want +got):\n%s", d)
	}

	// A duplicate changes nothing and names every duplicate.
	c := &Set{
		Components: map[string]*configv1.Component{"a": {Name: "a"}, "z": {Name: "z"}},
		Policies:   map[string]*configv1.Policy{"a": {Name: "a"}},
	}
	err = s.Merge(c)
	checkFields(t, err, []wantErr{
		{field: "metadata.name", msg: `duplicate Component name "a"`},
		{field: "metadata.name", msg: `duplicate Policy name "a"`},
	})
	if d := cmp.Diff(want, names3(&s)); d != "" {
		t.Errorf("a failed Merge changed the set (-want +got):\n%s", d)
	}
}

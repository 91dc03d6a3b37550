package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseBytes checks that parsing never panics, that every error is an
// *Error of the file, and that every accepted object passes its Validate
// function and is filed under its own name.
func FuzzParseBytes(f *testing.F) {
	err := filepath.WalkDir("testdata", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			return err
		}
		data, err := os.ReadFile(p)
		if err == nil {
			f.Add(data)
		}
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{compA, polA, subA, badDoc, "a: &x [*x]\n", "kind: *k\n", "{", "---\n---\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := ParseBytes("fuzz.yaml", data)
		if err != nil {
			if set != nil {
				t.Fatal("ParseBytes returned a Set with an error")
			}
			for _, e := range Errors(err) {
				var ce *Error
				if !errors.As(e, &ce) || ce.File != "fuzz.yaml" || ce.Line < 0 {
					t.Fatalf("error %q is not an *Error of fuzz.yaml with a line", e)
				}
			}
			return
		}
		for name, c := range set.Components {
			if c.GetName() != name {
				t.Fatalf("component %q filed as %q", c.GetName(), name)
			}
			if err := ValidateComponent(c); err != nil {
				t.Fatalf("accepted component fails validation: %v", err)
			}
			if r := Redacted(c); r.GetName() != name {
				t.Fatal("Redacted changed the name")
			}
		}
		for name, s := range set.Subscriptions {
			if s.GetName() != name {
				t.Fatalf("subscription %q filed as %q", s.GetName(), name)
			}
			if err := ValidateSubscription(s); err != nil {
				t.Fatalf("accepted subscription fails validation: %v", err)
			}
		}
		for name, p := range set.Policies {
			if p.GetName() != name {
				t.Fatalf("policy %q filed as %q", p.GetName(), name)
			}
			if err := ValidatePolicy(p); err != nil {
				t.Fatalf("accepted policy fails validation: %v", err)
			}
		}
	})
}

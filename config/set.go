package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
)

// Set is the parsed content of one file or a directory; names are unique per
// kind. The objects are shared, not copied, by Merge: treat them as
// immutable once parsed. A Set is not safe for concurrent mutation.
type Set struct {
	Components    map[string]*configv1.Component
	Subscriptions map[string]*configv1.Subscription
	Policies      map[string]*configv1.Policy
}

func newSet() *Set {
	return &Set{
		Components:    map[string]*configv1.Component{},
		Subscriptions: map[string]*configv1.Subscription{},
		Policies:      map[string]*configv1.Policy{},
	}
}

func (s *Set) init() {
	if s.Components == nil {
		s.Components = map[string]*configv1.Component{}
	}
	if s.Subscriptions == nil {
		s.Subscriptions = map[string]*configv1.Subscription{}
	}
	if s.Policies == nil {
		s.Policies = map[string]*configv1.Policy{}
	}
}

func (s *Set) add(o object) {
	switch {
	case o.comp != nil:
		s.Components[o.name] = o.comp
	case o.sub != nil:
		s.Subscriptions[o.name] = o.sub
	default:
		s.Policies[o.name] = o.pol
	}
}

// Merge adds the objects of other to s. When a name of other is already in
// s for the same kind, Merge changes nothing and returns an error per
// duplicate, joined.
func (s *Set) Merge(other *Set) error {
	if other == nil {
		return nil
	}
	s.init()
	var errs errorList
	for name := range other.Components {
		if _, dup := s.Components[name]; dup {
			errs.add("metadata.name", "duplicate Component name %q", name)
		}
	}
	for name := range other.Subscriptions {
		if _, dup := s.Subscriptions[name]; dup {
			errs.add("metadata.name", "duplicate Subscription name %q", name)
		}
	}
	for name := range other.Policies {
		if _, dup := s.Policies[name]; dup {
			errs.add("metadata.name", "duplicate Policy name %q", name)
		}
	}
	if len(errs) > 0 {
		return errs.join()
	}
	for name, c := range other.Components {
		s.Components[name] = c
	}
	for name, sub := range other.Subscriptions {
		s.Subscriptions[name] = sub
	}
	for name, p := range other.Policies {
		s.Policies[name] = p
	}
	return nil
}

// ParseBytes parses the YAML documents in data; file is used in errors only.
// On any error it returns a nil Set and every error of the file, joined.
// Every object it returns has passed its Validate function.
func ParseBytes(file string, data []byte) (*Set, error) {
	objs, errs := parseFile(file, data)
	if len(errs) > 0 {
		return nil, errs.join()
	}
	set := newSet()
	for _, o := range objs {
		set.add(o)
	}
	return set, nil
}

// ParseFile reads and parses the file at path; see ParseBytes.
func ParseFile(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, ioError(path, err)
	}
	return ParseBytes(path, data)
}

// parseFile parses data and reports duplicate names within the file.
func parseFile(file string, data []byte) ([]object, errorList) {
	objs, errs := parseStream(file, data)
	first := map[string]int{} // kind/name → line
	kept := objs[:0]
	for _, o := range objs {
		key := o.kind + "/" + o.name
		if line, dup := first[key]; dup {
			errs = append(errs, &Error{File: file, Line: o.nameLine, Field: "metadata.name",
				Msg: fmt.Sprintf("duplicate %s name %q (first defined at line %d)", o.kind, o.name, line)})
			continue
		}
		first[key] = o.nameLine
		kept = append(kept, o)
	}
	// Report in file order: within a document, decoding errors are found
	// before validation errors.
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	return kept, errs
}

// LoadDir parses every *.yaml/*.yml file below dir, recursively, in lexical
// order; names starting with "." are skipped (so Kubernetes ConfigMap mounts
// are read once) and symbolic links to directories are not followed.
//
// It returns the objects of the files that parsed cleanly and, joined, every
// error of every file; a file with any error contributes nothing. A name
// already defined by an earlier file is an error of the later file naming
// both files. The Set is never nil. `outrig validate DIR` reports the
// returned error: one line per problem, "file:line: field: message".
func LoadDir(dir string) (*Set, error) {
	set := newSet()
	var files []string
	var errs errorList
	walkErr := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			errs = append(errs, ioError(p, err))
			if de != nil && de.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if p != dir && strings.HasPrefix(de.Name(), ".") {
			if de.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !de.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if walkErr != nil {
		return set, ioError(dir, walkErr)
	}
	origin := map[string]string{} // kind/name → "file:line"
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, ioError(f, err))
			continue
		}
		objs, fileErrs := parseFile(f, data)
		for _, o := range objs {
			if at, dup := origin[o.kind+"/"+o.name]; dup {
				fileErrs = append(fileErrs, &Error{File: f, Line: o.nameLine, Field: "metadata.name",
					Msg: fmt.Sprintf("duplicate %s name %q (first defined at %s)", o.kind, o.name, at)})
			}
		}
		if len(fileErrs) > 0 {
			errs = append(errs, fileErrs...)
			continue
		}
		for _, o := range objs {
			origin[o.kind+"/"+o.name] = f + ":" + strconv.Itoa(o.nameLine)
			set.add(o)
		}
	}
	if len(errs) > 0 {
		return set, errs.join()
	}
	return set, nil
}

// ioError reports a file system error of file without repeating its path.
func ioError(file string, err error) *Error {
	msg := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		msg = pe.Op + ": " + pe.Err.Error()
	}
	return &Error{File: file, Msg: msg, cause: err}
}

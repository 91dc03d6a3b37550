package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"gopkg.in/yaml.v3"
)

// doc decodes one YAML document into one object. It collects errors with
// their lines and remembers the line of every field path it visits, so that
// validation errors, which know only a field path, get a line too.
type doc struct {
	file  string
	start int            // line of the document's root node
	lines map[string]int // field path → line of its key (or sequence item)
	// renames maps a field path used by validation to the path as written,
	// where the two differ (v1alpha1 spec.route vs v2alpha1 spec.routes.default).
	renames map[string]string
	errs    errorList
	// valueNodes counts the nodes converted by jsonValue.
	valueNodes int
	// failed holds the field paths whose values could not be decoded;
	// validation errors at or below them are dropped as consequences.
	failed []string
}

func newDoc(file string, start int) *doc {
	return &doc{file: file, start: start, lines: map[string]int{}, renames: map[string]string{}}
}

// errorf records an error at path, on the line of n (the document start if n
// is nil).
func (d *doc) errorf(path string, n *yaml.Node, format string, args ...any) {
	line := d.start
	if n != nil && n.Line > 0 {
		line = n.Line
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

// bad records that the value at path could not be decoded.
func (d *doc) bad(path string, n *yaml.Node, format string, args ...any) {
	d.errorf(path, n, format, args...)
	d.failed = append(d.failed, path)
}

// addValidation places validation errors at the lines their fields were
// written on, dropping those caused by a value that already failed to decode.
func (d *doc) addValidation(errs errorList) {
	for _, e := range errs {
		if d.covered(e.Field) {
			continue
		}
		e.File = d.file
		e.Line = d.lineOf(e.Field)
		if r, ok := d.renames[e.Field]; ok {
			e.Field = r
		}
		d.errs = append(d.errs, e)
	}
}

func (d *doc) covered(field string) bool {
	for _, f := range d.failed {
		if field == f || strings.HasPrefix(field, f+".") || strings.HasPrefix(field, f+"[") {
			return true
		}
	}
	return false
}

// lineOf returns the line of path or of its nearest recorded ancestor.
func (d *doc) lineOf(path string) int {
	for path != "" {
		if l, ok := d.lines[path]; ok {
			return l
		}
		if strings.HasSuffix(path, "]") {
			path = path[:strings.LastIndexByte(path, '[')]
		} else if i := strings.LastIndexByte(path, '.'); i >= 0 {
			path = path[:i]
		} else {
			path = ""
		}
	}
	return d.start
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// maxAliasChain bounds alias resolution; yaml.v3 does not produce longer
// chains, the bound only guards against surprises.
const maxAliasChain = 16

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxAliasChain; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
		return quote(n.Value)
	case yaml.AliasNode:
		return "an alias"
	default:
		return "a document"
	}
}

// quote quotes a value for an error message, shortened when long.
func quote(v string) string {
	const max = 64
	if len(v) > max {
		return fmt.Sprintf("%q (%d bytes)", v[:max]+"...", len(v))
	}
	return fmt.Sprintf("%q", v)
}

// field is one known key of a mapping and what to do with its value. The
// setter gets the key's path and the (unresolved) value node.
type field struct {
	name string
	set  func(path string, v *yaml.Node)
}

// skip is the setter of keys accepted and ignored.
func skip(string, *yaml.Node) {}

// fields walks the mapping n at path and calls the setter of every known key;
// other keys are errors. A null n is an empty mapping.
func (d *doc) fields(path string, n *yaml.Node, known []field) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.bad(path, n, "must be a mapping, got %s", describe(n))
		return
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, v := n.Content[i], n.Content[i+1]
		k := resolve(kn)
		if k == nil || k.Kind != yaml.ScalarNode {
			d.errorf(path, kn, "keys must be plain strings, got %s", describe(kn))
			continue
		}
		p := join(path, k.Value)
		if k.Tag == "!!merge" {
			d.errorf(p, kn, "merge keys (<<) are not supported")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.bad(p, kn, "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = kn.Line
		d.lines[p] = kn.Line
		f := lookup(known, k.Value)
		if f == nil {
			d.errorf(p, kn, "unknown field %q (known: %s)", k.Value, names(known))
			continue
		}
		f.set(p, v)
	}
}

func lookup(known []field, name string) *field {
	for i := range known {
		if known[i].name == name {
			return &known[i]
		}
	}
	return nil
}

func names(known []field) string {
	var out []string
	for _, f := range known {
		out = append(out, f.name)
	}
	return strings.Join(out, ", ")
}

// items walks the sequence n at path. A null n is an empty sequence.
func (d *doc) items(path string, n *yaml.Node, each func(path string, v *yaml.Node)) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.bad(path, n, "must be a sequence, got %s", describe(n))
		return
	}
	for i, v := range n.Content {
		p := index(path, i)
		d.lines[p] = v.Line
		each(p, v)
	}
}

// scalar returns the resolved scalar n, or nil after recording an error. A
// null scalar is returned as is; callers treat it as the zero value.
func (d *doc) scalar(path string, n *yaml.Node, want string) *yaml.Node {
	r := resolve(n)
	if r == nil || r.Kind != yaml.ScalarNode {
		d.bad(path, n, "must be %s, got %s", want, describe(n))
		return nil
	}
	return r
}

// str decodes a string. Numbers and booleans keep the form they were
// written in; null is "".
func (d *doc) str(path string, n *yaml.Node) string {
	s := d.scalar(path, n, "a string")
	if s == nil || isNull(s) {
		return ""
	}
	return s.Value
}

// maxValueNodes bounds the YAML nodes, aliases expanded, that one JSON
// metadata value may hold, so that aliases cannot blow a small file up into
// a huge value.
const maxValueNodes = 10000

// metaValue decodes a Dapr metadata value: scalars as written, null as "",
// mappings and sequences as their JSON text.
func (d *doc) metaValue(path string, n *yaml.Node) string {
	r := resolve(n)
	if r == nil || (r.Kind != yaml.MappingNode && r.Kind != yaml.SequenceNode) {
		return d.str(path, n)
	}
	d.valueNodes = 0
	v, err := d.jsonValue(r, 0)
	if err != nil {
		d.bad(path, n, "cannot be represented as JSON: %v", err)
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		d.bad(path, n, "cannot be represented as JSON: %v", err)
		return ""
	}
	return string(b)
}

// jsonValue converts n to a value for encoding/json, counting nodes in
// d.valueNodes.
func (d *doc) jsonValue(n *yaml.Node, depth int) (any, error) {
	n = resolve(n)
	d.valueNodes++
	if d.valueNodes > maxValueNodes || depth > 100 {
		return nil, fmt.Errorf("value too large (more than %d nodes or 100 levels once aliases are expanded)", maxValueNodes)
	}
	if n == nil {
		return nil, errors.New("unresolved alias")
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i])
			if k == nil || k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
				return nil, fmt.Errorf("line %d: keys must be plain strings", n.Content[i].Line)
			}
			v, err := d.jsonValue(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := d.jsonValue(c, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		return v, nil
	default:
		return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
	}
}

func (d *doc) boolean(path string, n *yaml.Node) bool {
	s := d.scalar(path, n, "true or false")
	if s == nil || isNull(s) {
		return false
	}
	var b bool
	if s.Tag != "!!bool" || s.Decode(&b) != nil {
		d.bad(path, n, "must be true or false, got %s", quote(s.Value))
		return false
	}
	return b
}

func (d *doc) int32(path string, n *yaml.Node) int32 {
	s := d.scalar(path, n, "an integer")
	if s == nil || isNull(s) {
		return 0
	}
	var v int64
	if s.Tag != "!!int" || s.Decode(&v) != nil {
		d.bad(path, n, "must be an integer, got %s", quote(s.Value))
		return 0
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.bad(path, n, "%s is out of range", s.Value)
		return 0
	}
	return int32(v)
}

func (d *doc) float(path string, n *yaml.Node) float64 {
	s := d.scalar(path, n, "a number")
	if s == nil || isNull(s) {
		return 0
	}
	var v float64
	if (s.Tag != "!!int" && s.Tag != "!!float") || s.Decode(&v) != nil {
		d.bad(path, n, "must be a number, got %s", quote(s.Value))
		return 0
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		d.bad(path, n, "must be a finite number, got %s", quote(s.Value))
		return 0
	}
	return v
}

// duration decodes a Go duration string such as "50ms"; null is nil.
func (d *doc) duration(path string, n *yaml.Node) *durationpb.Duration {
	s := d.scalar(path, n, "a duration")
	if s == nil || isNull(s) {
		return nil
	}
	v, err := time.ParseDuration(s.Value)
	if err != nil {
		d.bad(path, n, "must be a duration such as \"500ms\" or \"2s\", got %s", quote(s.Value))
		return nil
	}
	return durationpb.New(v)
}

func (d *doc) strings(path string, n *yaml.Node) []string {
	var out []string
	d.items(path, n, func(p string, v *yaml.Node) {
		out = append(out, d.str(p, v))
	})
	return out
}

// stringMap decodes a mapping of strings; values keep their written form.
func (d *doc) stringMap(path string, n *yaml.Node) map[string]string {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.bad(path, n, "must be a mapping, got %s", describe(n))
		return nil
	}
	out := make(map[string]string, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, v := n.Content[i], n.Content[i+1]
		k := resolve(kn)
		if k == nil || k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			d.errorf(path, kn, "keys must be plain strings, got %s", describe(kn))
			continue
		}
		p := join(path, k.Value)
		if _, dup := out[k.Value]; dup {
			d.bad(p, kn, "duplicate key")
			continue
		}
		d.lines[p] = kn.Line
		out[k.Value] = d.str(p, v)
	}
	return out
}

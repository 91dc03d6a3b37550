package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"gopkg.in/yaml.v3"
)

const (
	apiDaprV1   = "dapr.io/v1alpha1"
	apiDaprV2   = "dapr.io/v2alpha1"
	apiOutrigV1 = "outrig.dev/v1alpha1"
)

// kinds lists the known kinds of every known apiVersion.
var kinds = map[string][]string{
	apiDaprV1:   {"Component", "Subscription"},
	apiDaprV2:   {"Subscription"},
	apiOutrigV1: {"Component", "Policy"},
}

// unsupportedDapr are Dapr kinds we recognise and refuse, with a hint.
var unsupportedDapr = map[string]string{
	"Configuration":      "",
	"Resiliency":         "; use an outrig.dev/v1alpha1 Policy",
	"HTTPEndpoint":       "",
	"PluggableComponent": "",
}

// object is one parsed document.
type object struct {
	kind     string // Component, Subscription or Policy
	name     string
	nameLine int
	comp     *configv1.Component
	sub      *configv1.Subscription
	pol      *configv1.Policy
}

// parseStream parses every document of data. It returns the objects of the
// documents that had no errors, and all errors.
func parseStream(file string, data []byte) ([]object, errorList) {
	var objs []object
	var errs errorList
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var root yaml.Node
		err := decodeSafely(dec, &root)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, yamlError(file, data, err))
			break // the decoder cannot continue after a syntax error
		}
		obj, docErrs := parseDocument(file, &root)
		errs = append(errs, docErrs...)
		if len(docErrs) == 0 && obj != nil {
			objs = append(objs, *obj)
		}
	}
	return objs, errs
}

// decodeSafely turns a panic of the YAML library into an error: malformed
// outside input must never bring down the control plane.
func decodeSafely(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: parser failed: %v", r)
		}
	}()
	return dec.Decode(n)
}

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// parserProblems are the problems that yaml.v3 reports from its parser rather
// than its scanner. For these it prints a 0-based line (the line of the
// problem or of the collection around it) and no line at all for line 0;
// scanner problems come with 1-based lines.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
}

var unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

func yamlError(file string, data []byte, err error) *Error {
	e := &Error{File: file, Msg: "invalid YAML: " + err.Error(), cause: err}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1]) // 0 when absent
		e.Msg = "invalid YAML: " + m[2]
		if parserProblems[m[2]] {
			e.Line++
		}
		if a := unknownAnchor.FindStringSubmatch(m[2]); a != nil && e.Line == 0 {
			e.Line = aliasLine(data, a[1])
		}
	}
	return e
}

// aliasLine returns the first line that holds the alias *name, or 0; yaml.v3
// reports unknown anchors without a line.
func aliasLine(data []byte, name string) int {
	for i, line := range strings.Split(string(data), "\n") {
		for rest := line; ; {
			j := strings.Index(rest, "*"+name)
			if j < 0 {
				break
			}
			rest = rest[j+1+len(name):]
			if rest == "" || strings.ContainsRune(" \t\r,]}#", rune(rest[0])) {
				return i + 1
			}
		}
	}
	return 0
}

// parseDocument parses one document; it returns nil for an empty document.
func parseDocument(file string, root *yaml.Node) (*object, errorList) {
	n := root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil, nil
		}
		n = n.Content[0]
	}
	d := newDoc(file, n.Line)
	n = resolve(n)
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf("", n, "a document must be a mapping with apiVersion and kind, got %s", describe(n))
		return nil, d.errs
	}
	api, kind := d.header(n)
	if api == "" || kind == "" {
		return nil, d.errs
	}
	obj := &object{kind: kind}
	switch {
	case kind == "Component" && (api == apiDaprV1 || api == apiOutrigV1):
		obj.comp = d.component(n, api)
		obj.name = obj.comp.Name
	case kind == "Subscription" && (api == apiDaprV1 || api == apiDaprV2):
		obj.sub = d.subscription(n, api)
		obj.name = obj.sub.Name
	case kind == "Policy" && api == apiOutrigV1:
		obj.pol = d.policy(n)
		obj.name = obj.pol.Name
	default:
		return nil, d.errs // header reported it
	}
	obj.nameLine = d.lineOf("metadata.name")
	return obj, d.errs
}

// header reads apiVersion and kind and reports missing or unknown ones. It
// returns empty strings when the document cannot be parsed further.
func (d *doc) header(n *yaml.Node) (api, kind string) {
	var apiNode, kindNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k := resolve(n.Content[i]); {
		case k == nil || k.Kind != yaml.ScalarNode:
		case k.Value == "apiVersion" && apiNode == nil:
			apiNode = n.Content[i+1]
		case k.Value == "kind" && kindNode == nil:
			kindNode = n.Content[i+1]
		}
	}
	api = d.required("apiVersion", n, apiNode)
	kind = d.required("kind", n, kindNode)
	if api == "" || kind == "" {
		return "", ""
	}
	known, ok := kinds[api]
	if !ok {
		d.errorf("apiVersion", apiNode, "unknown apiVersion %q (known: %s, %s, %s)", api, apiDaprV1, apiDaprV2, apiOutrigV1)
		return "", ""
	}
	for _, k := range known {
		if k == kind {
			return api, kind
		}
	}
	if hint, ok := unsupportedDapr[kind]; ok && (api == apiDaprV1 || api == apiDaprV2) {
		d.errorf("kind", kindNode, "kind %s is not supported%s", kind, hint)
		return "", ""
	}
	d.errorf("kind", kindNode, "unknown kind %q for apiVersion %s (known: %s)", kind, api, strings.Join(known, ", "))
	return "", ""
}

// required decodes the string v of the key path of mapping parent and
// reports it when it is missing or empty.
func (d *doc) required(path string, parent, v *yaml.Node) string {
	if v == nil {
		d.errorf(path, parent, "required")
		return ""
	}
	before := len(d.errs)
	s := d.str(path, v)
	if s == "" && len(d.errs) == before {
		d.errorf(path, v, "required")
	}
	return s
}

// objectMeta are the Kubernetes ObjectMeta fields accepted and ignored in
// metadata; only name is used.
var objectMeta = []string{
	"namespace", "labels", "annotations", "uid", "resourceVersion", "generation",
	"creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
	"generateName", "selfLink", "ownerReferences", "finalizers", "managedFields",
}

// metadataFields decodes the object's metadata into *name.
func (d *doc) metadataFields(name *string) field {
	return field{"metadata", func(p string, v *yaml.Node) {
		known := []field{{"name", func(p string, v *yaml.Node) { *name = d.str(p, v) }}}
		for _, f := range objectMeta {
			known = append(known, field{f, skip})
		}
		d.fields(p, v, known)
	}}
}

// topFields are the fields every kind has besides metadata, spec and scopes.
var topFields = []field{{"apiVersion", skip}, {"kind", skip}}

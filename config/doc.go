// Package config is the YAML front door of Outrig's configuration: it parses
// Dapr-format and Outrig-format resource files into the configv1 protos and
// validates them.
//
// # Accepted documents
//
//	apiVersion            kind           result
//	dapr.io/v1alpha1      Component      *configv1.Component
//	outrig.dev/v1alpha1   Component      *configv1.Component (same shape as Dapr's)
//	dapr.io/v1alpha1      Subscription   *configv1.Subscription (spec.route)
//	dapr.io/v2alpha1      Subscription   *configv1.Subscription (spec.routes)
//	outrig.dev/v1alpha1   Policy         *configv1.Policy
//
// A file may hold several documents separated by "---"; empty documents are
// skipped. Dapr's Configuration, Resiliency, HTTPEndpoint and
// PluggableComponent kinds are reported as "kind X is not supported"; any other
// kind or apiVersion is an error too.
//
// # Strictness
//
// Unknown fields are errors that name the field and its line. The Dapr fields
// that are accepted and knowingly ignored are:
//
//   - top-level auth (Component): Outrig resolves secretKeyRef items from the
//     sidecar's environment, not from a Dapr secret store;
//   - every metadata field except name (namespace, labels, annotations and the
//     rest of Kubernetes' ObjectMeta): Outrig has no namespaces;
//   - spec.bulkSubscribe (Subscription): bulk delivery is not implemented.
//
// Dapr metadata values may be YAML numbers, booleans or null: they are kept in
// the string form they were written in (null becomes ""). A mapping or sequence
// value is kept as its JSON text. A metadata item must carry exactly one of
// value and secretKeyRef (value: "" counts as a value). A rule without match in
// spec.routes.rules matches every event, as in Dapr.
// spec.maxRedeliveries is an Outrig extension of Subscription.
//
// # Validation and errors
//
// ValidateComponent, ValidateSubscription and ValidatePolicy are shared by the
// YAML path and the xDS path (the sidecar NACKs resources that fail them).
// Every error is an *Error naming the field path as written in YAML (for
// example spec.rateLimit.rate) and the bad value; functions return all errors
// joined with errors.Join, so err.Error() prints one error per line in the form
//
//	file:line: field: message
//
// Errors from the Validate functions carry no file or line. Use Errors to
// get the individual errors of a joined error.
//
// `outrig validate DIR` is LoadDir(DIR): every error of every file is in the
// returned joined error.
package config

package resource

import (
	"fmt"
	"strings"
)

// CollectionSuffix ends a glob-collection name: "<prefix>/*" stands for every
// resource named "<prefix>/<something>".
const CollectionSuffix = "/*"

// EndpointName is the resource name of the Endpoint of instance instanceID
// of appID: "<appID>/<instanceID>".
func EndpointName(appID, instanceID string) string { return appID + "/" + instanceID }

// EndpointsCollection is the glob collection of appID's Endpoints:
// "<appID>/*". A sidecar subscribes to it to learn the app's instances.
func EndpointsCollection(appID string) string { return appID + CollectionSuffix }

// SplitEndpointName splits "<appID>/<instanceID>"; ok is false for any other
// shape (no "/", an empty part, or a collection name).
func SplitEndpointName(name string) (appID, instanceID string, ok bool) {
	i := strings.IndexByte(name, '/')
	if i <= 0 || i == len(name)-1 {
		return "", "", false
	}
	appID, instanceID = name[:i], name[i+1:]
	if strings.ContainsAny(instanceID, "/*") {
		return "", "", false
	}
	return appID, instanceID, true
}

// IsCollection reports whether name is a glob collection ("<prefix>/*" with
// a non-empty prefix).
func IsCollection(name string) bool {
	return len(name) > len(CollectionSuffix) && strings.HasSuffix(name, CollectionSuffix)
}

// CollectionOf returns the glob collection a resource name belongs to (the
// name up to its last "/", then "*"), or "" when the name has no "/", an
// empty part around it, or is itself a collection.
func CollectionOf(name string) string {
	if IsCollection(name) {
		return ""
	}
	i := strings.LastIndexByte(name, '/')
	if i <= 0 || i == len(name)-1 {
		return ""
	}
	return name[:i] + CollectionSuffix
}

// CheckID validates an app id or instance id that becomes part of an
// Endpoint's resource name: it must be non-empty and contain neither "/"
// nor "*". field names the offending field in the error.
func CheckID(field, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%s is required", field)
	case strings.ContainsAny(id, "/*"):
		return fmt.Errorf("%s %q: must not contain '/' or '*'", field, id)
	}
	return nil
}

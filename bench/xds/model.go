package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/outrig/outrig/xds/client"
	"github.com/outrig/outrig/xds/resource"
)

// update is one response as a simulated sidecar sees it: the resources it
// carries (name and encoded message) and, for delta, the removed names. A
// state-of-the-world response carries the client's whole set of the type
// (full), and no names: a SotW client learns a removal by absence.
type update struct {
	typeURL   string
	full      bool
	resources []item
	removed   []string
}

type item struct {
	name string // empty in SotW responses
	raw  []byte // the resource's deterministic protobuf encoding
}

// probe reports whether an update shows a subscriber the change being
// measured. It is called from the subscribers' goroutines concurrently, so
// it must not keep state.
type probe func(u *update) bool

// present returns the probe of a change that adds marker to typeURL's
// content: any resource of the response carries it. Markers are unique
// strings (instance ids, config values), so a plain byte search over the
// encoded message is exact and needs no decoding.
func present(typeURL, marker string) probe {
	m := []byte(marker)
	return func(u *update) bool {
		if u.typeURL != typeURL {
			return false
		}
		for _, r := range u.resources {
			if bytes.Contains(r.raw, m) {
				return true
			}
		}
		return false
	}
}

// gone returns the probe of a change that removes marker from typeURL: a
// full set without it, or what the endpoint model says a delta removal
// looks like.
func gone(typeURL, marker string, delta probe) probe {
	m := []byte(marker)
	return func(u *update) bool {
		if u.typeURL != typeURL {
			return false
		}
		if !u.full {
			return delta(u)
		}
		for _, r := range u.resources {
			if bytes.Contains(r.raw, m) {
				return false
			}
		}
		return true
	}
}

// endpointModel is how a sidecar subscribes to the endpoints of an app id,
// and how an instance leaving shows in a delta response. It is the only
// part of the simulator that knows how endpoints are cut into resources, so
// that a change of that layout is a new model, not a new simulator. (The
// first layout, one ServiceEndpoints resource per app id named by it, was
// such a model; it went when the control plane stopped publishing that
// type.)
type endpointModel interface {
	// Name labels the model in reports.
	Name() string
	// TypeURL is the type the endpoints travel as.
	TypeURL() string
	// Subscribe returns what a sidecar puts in resource_names_subscribe
	// (delta) or resource_names (SotW) for the ServiceEndpoints of apps.
	Subscribe(apps []string) []string
	// Matches reports whether the resource called name is covered by the
	// subscription entry sub (as returned by Subscribe). The SotW baseline
	// uses it to build a client's full set.
	Matches(sub, name string) bool
	// Left returns the delta probe that sees instance inst of app gone.
	Left(app, inst string) probe
	// WatchXDS subscribes an xds/client to the endpoints of apps and waits
	// for the answers.
	WatchXDS(ctx context.Context, c *client.Client, apps []string) error
}

// collectionModel is the layout of xds/resource since incremental
// endpoints: one Endpoint resource per instance, named
// "<app id>/<instance id>", and a sidecar subscribes to an app id as the
// glob collection "<app id>/*". A join sends one resource, a leave one
// name in removed_resources.
type collectionModel struct{}

func (collectionModel) Name() string {
	return "one Endpoint resource per instance, each app subscribed as the collection <app>/*"
}

func (collectionModel) TypeURL() string { return resource.EndpointType }

func (collectionModel) Subscribe(apps []string) []string {
	out := make([]string, len(apps))
	for i, app := range apps {
		out[i] = resource.EndpointsCollection(app)
	}
	return out
}

func (collectionModel) Matches(sub, name string) bool { return resource.CollectionOf(name) == sub }

func (collectionModel) Left(app, inst string) probe {
	name := resource.EndpointName(app, inst)
	return func(u *update) bool { return slices.Contains(u.removed, name) }
}

func (collectionModel) WatchXDS(ctx context.Context, c *client.Client, apps []string) error {
	for _, app := range apps {
		if err := c.Watch(resource.EndpointType, resource.EndpointsCollection(app)); err != nil {
			return fmt.Errorf("watch endpoints of %s: %w", app, err)
		}
	}
	for _, app := range apps {
		if _, _, err := c.Endpoints(ctx, app); err != nil {
			return fmt.Errorf("endpoints of %s: %w", app, err)
		}
	}
	return nil
}

// modelByName returns the endpoint model selected by -model.
func modelByName(name string) (endpointModel, error) {
	switch name {
	case "collection":
		return collectionModel{}, nil
	}
	return nil, fmt.Errorf("-model %q: want collection", name)
}

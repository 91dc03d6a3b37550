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
// that a change of that layout is a new model, not a new simulator.
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

// perAppModel is the layout of xds/resource today: one ServiceEndpoints
// resource per app id, named by the app id, holding every endpoint. A join
// or a leave resends the whole resource.
type perAppModel struct{}

func (perAppModel) Name() string { return "one ServiceEndpoints resource per app id" }

func (perAppModel) TypeURL() string { return resource.ServiceEndpointsType }

func (perAppModel) Subscribe(apps []string) []string { return slices.Clone(apps) }

func (perAppModel) Matches(sub, name string) bool { return sub == name }

func (perAppModel) Left(app, inst string) probe {
	m := []byte(inst)
	return func(u *update) bool {
		if slices.Contains(u.removed, app) {
			return true
		}
		for _, r := range u.resources {
			if r.name == app {
				return !bytes.Contains(r.raw, m)
			}
		}
		return false
	}
}

func (perAppModel) WatchXDS(ctx context.Context, c *client.Client, apps []string) error {
	for _, app := range apps {
		if err := c.Watch(resource.ServiceEndpointsType, app); err != nil {
			return fmt.Errorf("watch endpoints of %s: %w", app, err)
		}
	}
	for _, app := range apps {
		if _, _, err := c.Wait(ctx, resource.ServiceEndpointsType, app); err != nil {
			return fmt.Errorf("endpoints of %s: %w", app, err)
		}
	}
	return nil
}

// modelByName returns the endpoint model selected by -model.
func modelByName(name string) (endpointModel, error) {
	switch name {
	case "per-app":
		return perAppModel{}, nil
	}
	return nil, fmt.Errorf("-model %q: want per-app", name)
}

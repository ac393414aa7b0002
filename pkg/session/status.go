package session

import (
	"context"
	"fmt"

	"github.com/stptunnel/stptunnel/pkg/detect"
	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
)

// StatusOptions are env status's inputs beyond the document.
type StatusOptions struct {
	// Scope selects the functions to look at (none: every function of the region).
	Scope detect.Scope
}

// Status: the functions of the scope that carry a session marker (Markers, in the document's "markers" form), and
// the markers themselves (Raw, in the same order, nil where unreadable), which carry deployed values: the command
// line masks them and never prints them.
type Status struct {
	Scanned int
	Markers []doc.Marked
	Raw     []*lambdaenv.Marker
}

func (Status) event() {}

// EnvStatus is the env status step: it lists the functions of the scope that carry a session marker — their
// session, who holds them and since when, the keys it changed (names only) and whether its tunnels answer — into
// d's "markers" (and "region"). It reads and dials, and writes nothing.
func EnvStatus(ctx context.Context, d *doc.Document, opts StatusOptions, env Env) error {
	listed, skips, region, err := listScope(ctx, d.Region(), opts.Scope, env)
	if err != nil {
		return err
	}
	for _, s := range skips {
		env.report(Warning{Message: fmt.Sprintf("%s: %s", s.Function, s.Message)})
	}
	ev := Status{Scanned: len(listed), Markers: []doc.Marked{}}
	for _, f := range listed {
		if f.Unreadable {
			env.report(unreadable(f.Name))
			continue
		}
		m, ok, merr := lambdaenv.MarkerOf(f.Env)
		switch {
		case !ok:
			continue
		case merr != nil:
			ev.Markers = append(ev.Markers, doc.Marked{Function: f.Name, ARN: f.ARN, Keys: []string{}, Tunnels: []doc.Probe{},
				Message: fmt.Sprintf("its %s cannot be read: %v", lambdaenv.MarkerKey, merr)})
			ev.Raw = append(ev.Raw, nil)
		default:
			ev.Markers = append(ev.Markers, doc.Marked{Function: f.Name, ARN: f.ARN, Session: m.ID, By: m.By, Since: m.At,
				Keys: m.KeyNames()})
			ev.Raw = append(ev.Raw, &m)
		}
	}
	alive := probe(ctx, publics(ev.Raw))
	for i, m := range ev.Raw {
		if m != nil {
			ev.Markers[i].Tunnels, ev.Markers[i].Alive = probes(m.Pub, alive)
		}
	}
	env.report(ev)
	if err := d.Set(doc.FieldRegion, region); err != nil {
		return err
	}
	return d.Set(doc.FieldMarkers, ev.Markers)
}

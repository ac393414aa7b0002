package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
)

// PatchOptions are env patch's inputs beyond the document.
type PatchOptions struct {
	// Concurrency is how many Lambda calls are in flight at once (lambdaenv.DefaultConcurrency when 0).
	Concurrency int
	// NoWait returns once each update is accepted, without waiting for it to go live.
	NoWait bool
	// DryRun reads and computes, and writes nothing.
	DryRun bool
	// TakeOver patches the functions another session holds (skipped as in-use otherwise), sharing them: its
	// values before stay the originals, so whichever session restores, the function gets its deployed values back.
	TakeOver bool
	// By is who patches, user@host, for a session this step creates (WhoAmI when empty).
	By string
}

// ErrNothingPatched: a step had functions to patch and patched none of them. It must not look like success;
// each function's reason was reported as it was skipped.
var ErrNothingPatched = errors.New("no function was patched: each was skipped for the reason given above")

// Plans builds one plan per function of the document that has bindings to a resource with a tunnel. Functions
// the document lists as skipped are left out. A document that makes a binding ambiguous (two resources, or two
// tunnels, of one name) is bad input.
func Plans(d *doc.Document) ([]lambdaenv.Plan, error) {
	resources, err := d.Resources()
	if err != nil {
		return nil, asInput(err)
	}
	functions, err := d.Functions()
	if err != nil {
		return nil, asInput(err)
	}
	tunnels, err := d.Tunnels()
	if err != nil {
		return nil, asInput(err)
	}
	skipped, err := d.Skipped()
	if err != nil {
		return nil, asInput(err)
	}
	byName := map[string]doc.Resource{}
	for i, r := range resources {
		if _, dup := byName[r.Name]; dup {
			return nil, asInput(&doc.InputError{Where: fmt.Sprintf("resources[%d]", i), Err: fmt.Errorf("resource %q is declared twice", r.Name)})
		}
		byName[r.Name] = r
	}
	targets := map[string]lambdaenv.Target{}
	for i, t := range tunnels {
		if _, dup := targets[t.Resource]; dup {
			return nil, asInput(&doc.InputError{Where: fmt.Sprintf("tunnels[%d]", i), Err: fmt.Errorf("resource %q has two tunnels", t.Resource)})
		}
		public, err := connstr.ParseHostPort(t.Public)
		if err != nil {
			return nil, asInput(&doc.InputError{Where: fmt.Sprintf("tunnels[%d].public", i), Err: err})
		}
		r, ok := byName[t.Resource]
		if !ok {
			r = doc.Resource{Name: t.Resource, Type: connstr.TypeTCP, Address: t.Local}
		}
		if r.Address == "" && r.URL == "" {
			r.Address = t.Local
		}
		if _, err := lambdaenv.LocalAddress(r); err != nil {
			return nil, asInput(&doc.InputError{Where: fmt.Sprintf("tunnels[%d]", i), Err: err})
		}
		targets[t.Resource] = lambdaenv.Target{Resource: r, Public: public}
	}
	skip := map[string]bool{}
	for _, s := range skipped {
		skip[s.Function] = true
	}
	var plans []lambdaenv.Plan
	for i, f := range functions {
		if skip[f.Name] || len(f.Bindings) == 0 {
			continue
		}
		if j := slices.IndexFunc(f.Bindings, func(b doc.Binding) bool { return b.Env == lambdaenv.MarkerKey }); j >= 0 {
			return nil, asInput(&doc.InputError{Where: fmt.Sprintf("functions[%d].bindings[%d].env", i, j),
				Err: fmt.Errorf("%s is stptunnel's session marker, not a variable to bind", lambdaenv.MarkerKey)})
		}
		if slices.ContainsFunc(f.Bindings, func(b doc.Binding) bool { _, ok := targets[b.Resource]; return ok }) {
			plans = append(plans, lambdaenv.Plan{Function: f.Name, ARN: f.ARN, Bindings: f.Bindings, Targets: targets})
		}
	}
	return plans, nil
}

// Patcher is a patch step's hold on Lambda and the journal: env patch uses it once, dev again whenever a
// tunnel moves.
type Patcher struct {
	p         *lambdaenv.Patcher
	env       Env
	by        string
	restoring atomic.Bool // its progress is a restore's
}

// NewPatcher connects to Lambda in the document's region (opts and state.Journal as the journal).
func NewPatcher(ctx context.Context, region string, opts PatchOptions, state *State, env Env) (*Patcher, error) {
	cfg, err := env.aws(ctx, region)
	if err != nil {
		return nil, err
	}
	p := &lambdaenv.Patcher{
		Client:      lambda.NewFromConfig(cfg),
		Concurrency: opts.Concurrency,
		Wait:        !opts.NoWait,
		DryRun:      opts.DryRun,
		TakeOver:    opts.TakeOver,
	}
	sp := &Patcher{p: p, env: env, by: opts.By}
	p.Progress = func(e lambdaenv.Event) {
		switch {
		case sp.restoring.Load():
			env.report(RestoreProgress{e})
		case e.Kind == lambdaenv.EventSkipped && e.Reason == doc.ReasonInUse:
			// Reported as InUse once the holder's tunnels are probed, with what to do about it.
		default:
			env.report(PatchProgress{e})
		}
	}
	if state != nil {
		p.Journal = state.Journal
	}
	return sp, nil
}

// Restore restores entries through the same client and quota pacing as the patches: dev's cleanup.
func (p *Patcher) Restore(ctx context.Context, entries []lambdaenv.Entry) ([]doc.Restore, error) {
	p.restoring.Store(true)
	defer p.restoring.Store(false)
	return p.p.Restore(ctx, entries, lambdaenv.RestoreOptions{})
}

// DryRun reports whether the patcher writes nothing.
func (p *Patcher) DryRun() bool { return p.p.DryRun }

// Patch patches the planned functions of d bound to resource ("" for all) with the tunnels' current addresses,
// as d's session (created and recorded in d when it has none), and records the outcome in d's "patches" and
// "skipped". A function another session holds is skipped as in-use, reported with whether that session's tunnels
// answer. The error joins the functions that failed.
func (p *Patcher) Patch(ctx context.Context, d *doc.Document, resource string) error {
	plans, err := Plans(d)
	if err != nil {
		return err
	}
	if resource != "" {
		plans = slices.DeleteFunc(plans, func(pl lambdaenv.Plan) bool {
			return !slices.ContainsFunc(pl.Bindings, func(b doc.Binding) bool { return b.Resource == resource })
		})
	}
	return p.patch(ctx, d, plans)
}

// patch patches plans, the plans of d Patch chose.
func (p *Patcher) patch(ctx context.Context, d *doc.Document, plans []lambdaenv.Plan) error {
	s, err := sessionOf(d, p.by, p.p.DryRun, p.p.Journal)
	if err != nil {
		return err
	}
	p.p.Session = markerSession(s)
	if len(plans) > 0 && !p.p.DryRun {
		names := make([]string, len(plans))
		for i, pl := range plans {
			names[i] = pl.Function
		}
		p.env.report(Updating{Functions: names, Wait: p.p.Wait})
	}
	res, err := p.p.Patch(ctx, plans)
	if merr := mergePatches(d, res.Patches); merr != nil {
		return merr
	}
	inUse := reportInUse(ctx, res.InUse, p.env)
	for _, sk := range res.Skipped {
		if msg, ok := inUse[sk.Function]; ok && sk.Reason == doc.ReasonInUse {
			sk.Message = msg
		}
		if aerr := d.Append(doc.FieldSkipped, sk); aerr != nil {
			return aerr
		}
	}
	return err
}

// Patch is the env patch step: it patches every planned function of d, journalled in state. It returns
// ErrNothingPatched when there were functions to patch and none was. A document with nothing to patch is
// reported and left as it is.
func Patch(ctx context.Context, d *doc.Document, opts PatchOptions, env Env) error {
	plans, err := Plans(d)
	if err != nil {
		return err
	}
	if len(plans) == 0 {
		env.report(NothingToDo{Message: "No function to patch: the document has no function with a binding to a tunnelled resource"})
		return nil
	}
	p, err := NewPatcher(ctx, d.Region(), opts, nil, env)
	if err != nil {
		return err
	}
	// The journal is the session's (the lock keeps a running dev's out of reach); a dry run reads it too, since a
	// re-patch computes from the originals it holds.
	state, err := OpenState(env.StateDir)
	if err != nil {
		return err
	}
	defer state.Close()
	p.p.Journal = state.Journal
	if err := p.patch(ctx, d, plans); err != nil {
		return fmt.Errorf("%w\n  functions already patched stay patched: `stptunnel env restore` puts them back (journal %s)",
			err, state.Journal.Path())
	}
	patches, err := d.Patches()
	if err != nil {
		return err
	}
	return nothingPatched(patches, opts.DryRun)
}

// nothingPatched is ErrNothingPatched when no patch is applied (outside a dry run).
func nothingPatched(patches []doc.Patch, dryRun bool) error {
	if dryRun || slices.ContainsFunc(patches, func(p doc.Patch) bool { return p.State == doc.PatchApplied }) {
		return nil
	}
	return ErrNothingPatched
}

// mergePatches sets the document's "patches": a function patched again replaces its earlier item; others stay.
func mergePatches(d *doc.Document, patches []doc.Patch) error {
	existing, err := d.Patches()
	if err != nil {
		return err
	}
	for _, p := range patches {
		if i := slices.IndexFunc(existing, func(e doc.Patch) bool { return e.Function == p.Function }); i >= 0 {
			existing[i] = p
		} else {
			existing = append(existing, p)
		}
	}
	if existing == nil {
		existing = []doc.Patch{}
	}
	return d.Set(doc.FieldPatches, existing)
}

// FailedFunctions names the functions of a joined *lambdaenv.FunctionError error, for a message: "api, worker".
func FailedFunctions(err error) string {
	var names []string
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			var fe *lambdaenv.FunctionError
			if errors.As(e, &fe) {
				names = append(names, fe.Function)
			}
		}
	}
	return strings.Join(names, ", ")
}

package session

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/stptunnel/stptunnel/pkg/detect"
	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
)

// RestoreOptions are env restore's inputs beyond the document.
type RestoreOptions struct {
	// Force also restores keys that changed since the patch.
	Force bool
	// Scope limits the restore to these functions (none: everything the document or the journal holds). A
	// function in scope that neither holds is restored from its session marker: restore from anywhere.
	Scope detect.Scope
	// Session limits the restore to this session's patches and markers.
	Session string
}

func (o RestoreOptions) scoped() bool {
	return len(o.Scope.Functions) > 0 || o.Scope.Prefix != "" || o.Scope.Stack != ""
}

// Restore is the env restore step: it restores the document's "patches" or, when it has none, everything the
// journal in the state dir holds, and records the outcome in d's "restores". Given a scope, it restores the
// functions of the scope those hold, and every other function of the scope that carries a session marker from
// the marker (CONTRACT.md §5: restore from any machine). A function left patched ends it with a
// *LeftPatchedError; the journal then keeps it.
func Restore(ctx context.Context, d *doc.Document, opts RestoreOptions, env Env) error {
	patches, err := d.Patches()
	if err != nil {
		return asInput(err)
	}
	docSession, _, err := d.Session()
	if err != nil {
		return asInput(err)
	}
	state, err := OpenState(env.StateDir) // never restore under a running session's feet: it owns the journal
	if err != nil {
		return err
	}
	defer state.Close()
	entries := restoreEntries(patches, d.Region(), docSession.ID, state.Journal)
	region := d.Region()
	if region == "" && len(entries) > 0 {
		region = entries[0].Region
	}
	var extra []doc.Restore // functions of the scope found with nothing to restore
	if opts.scoped() {
		var (
			marked []lambdaenv.Entry
			stack  map[string]bool
		)
		if marked, extra, stack, region, err = fromMarkers(ctx, entries, region, opts, env); err != nil {
			return err
		}
		entries = append(slices.DeleteFunc(entries, func(e lambdaenv.Entry) bool { return !opts.inScope(e, stack) }), marked...)
	}
	if len(entries) == 0 && len(extra) == 0 {
		msg := "Nothing to restore: no patches on stdin and no journal in " + env.StateDir
		if opts.scoped() {
			msg = "Nothing to restore: no function in scope carries a session marker or is in the journal of " + env.StateDir
		} else {
			msg += " (give --function, --prefix or --stack to restore functions from their session markers)"
		}
		env.report(NothingToDo{Message: msg})
		return nil
	}
	var restores []doc.Restore
	var restoreErr error
	if len(entries) > 0 {
		p, err := newRestorer(ctx, region, state.Journal, env)
		if err != nil {
			return err
		}
		env.report(Restoring{Functions: entryNames(entries)})
		restores, restoreErr = p.Restore(ctx, entries, lambdaenv.RestoreOptions{Force: opts.Force, Functions: opts.Scope.Functions,
			Session: opts.Session})
	}
	restores = append(restores, extra...)
	if err := recordRestores(d, patches, restores); err != nil {
		return err
	}
	if restoreErr != nil {
		return &LeftPatchedError{Err: fmt.Errorf("left patched: %s\n%w\n  the journal %s is kept: run `stptunnel env restore` to finish",
			FailedFunctions(restoreErr), restoreErr, state.Journal.Path())}
	}
	env.report(Restored{Restores: restores})
	return nil
}

// inScope reports whether an entry of the document or the journal is among the functions of the scope: named by
// --function, or with the --prefix and, given --stack, among the stack's functions (stack, from its listing).
func (o RestoreOptions) inScope(e lambdaenv.Entry, stack map[string]bool) bool {
	if len(o.Scope.Functions) > 0 {
		return slices.ContainsFunc(o.Scope.Functions, func(f string) bool { return sameFunction(f, e.Function) || f == e.ARN })
	}
	return strings.HasPrefix(e.Function, o.Scope.Prefix) && (o.Scope.Stack == "" || stack[e.Function])
}

// FromMarkers: functions of the scope that neither the document nor the journal holds are restored from their
// session markers. Markers carry deployed values: the command line masks them and never prints them.
type FromMarkers struct {
	Functions []string
	Markers   []lambdaenv.Marker
}

func (FromMarkers) event() {}

// fromMarkers lists the scope (detect's listing) and returns an entry FromMarker for each function in it that
// carries a session marker (of opts.Session, when given) and that entries does not hold, and the outcome of the
// functions named with nothing to restore; with --stack, the names of the stack's functions (deployed or not).
// region is the one used.
func fromMarkers(ctx context.Context, entries []lambdaenv.Entry, region string, opts RestoreOptions, env Env) (
	marked []lambdaenv.Entry, extra []doc.Restore, stack map[string]bool, _ string, _ error) {
	held := func(name string) bool {
		return slices.ContainsFunc(entries, func(e lambdaenv.Entry) bool { return sameFunction(name, e.Function) || name == e.ARN })
	}
	scope := opts.Scope
	if len(scope.Functions) > 0 {
		// Only the functions named that neither holds need reading.
		scope.Functions = slices.DeleteFunc(slices.Clone(scope.Functions), held)
		if len(scope.Functions) == 0 {
			return nil, nil, nil, region, nil
		}
	}
	listed, skips, region, err := listScope(ctx, region, scope, env)
	if err != nil {
		return nil, nil, nil, "", err
	}
	named := len(opts.Scope.Functions) > 0
	stack = map[string]bool{}
	var ev FromMarkers
	for _, f := range listed {
		stack[f.Name] = true
		if held(f.Name) {
			continue
		}
		m, ok, merr := lambdaenv.MarkerOf(f.Env)
		switch {
		case f.Unreadable:
			env.report(unreadable(f.Name))
			continue
		case !ok && named:
			extra = append(extra, doc.Restore{Function: f.Name, State: doc.RestoreNotNeeded,
				Message: "it carries no session marker and no journal here holds it: nothing to restore"})
			continue
		case !ok:
			continue
		case merr == nil && opts.Session != "" && m.ID != opts.Session:
			if named {
				extra = append(extra, doc.Restore{Function: f.Name, State: doc.RestoreNotNeeded,
					Message: fmt.Sprintf("session %s of %s holds it, not session %s", m.ID, m.By, opts.Session)})
			}
			continue
		case merr == nil:
			ev.Markers = append(ev.Markers, m)
		}
		// An unreadable marker is restored too: the restore then fails, saying why, rather than passing it over.
		ev.Functions = append(ev.Functions, f.Name)
		marked = append(marked, lambdaenv.Entry{Function: f.Name, ARN: f.ARN, Region: region, FromMarker: true})
	}
	for _, s := range skips {
		stack[s.Function] = true
		if held(s.Function) {
			continue // the entry's restore says it is gone
		}
		if s.Reason == doc.ReasonNotFound {
			extra = append(extra, doc.Restore{Function: s.Function, State: doc.RestoreGone, Message: s.Message})
		} else {
			env.report(Warning{Message: fmt.Sprintf("%s: %s", s.Function, s.Message)})
		}
	}
	if len(ev.Functions) > 0 {
		env.report(ev)
	}
	return marked, extra, stack, region, nil
}

// sameName compares a function reference given by the user (name or ARN) with a function name.
func sameFunction(ref, name string) bool {
	if ref == name {
		return true
	}
	if i := strings.Index(ref, ":function:"); i >= 0 {
		rest, _, _ := strings.Cut(ref[i+len(":function:"):], ":")
		return rest == name
	}
	return false
}

// newRestorer is a patcher for restores: it always waits for each update to go live.
func newRestorer(ctx context.Context, region string, journal *lambdaenv.Journal, env Env) (*lambdaenv.Patcher, error) {
	cfg, err := env.aws(ctx, region)
	if err != nil {
		return nil, err
	}
	return &lambdaenv.Patcher{Client: lambda.NewFromConfig(cfg), Journal: journal, Wait: true,
		Progress: func(e lambdaenv.Event) { env.report(RestoreProgress{e}) }}, nil
}

// restoreEntries chooses what to restore: the document's patches when it has any, else the journal. A patch whose
// function the journal also holds is taken from the journal, which knows its region and every value the session
// wrote (a re-patch since the document was printed). session is the document's session id.
func restoreEntries(patches []doc.Patch, region, session string, journal *lambdaenv.Journal) []lambdaenv.Entry {
	if len(patches) == 0 {
		return journal.Entries()
	}
	var entries []lambdaenv.Entry
	for _, p := range patches {
		ref := p.ARN
		if ref == "" {
			ref = p.Function
		}
		if e, ok := journal.Get(ref); ok {
			entries = append(entries, e)
			continue
		}
		entries = append(entries, lambdaenv.EntryFromPatch(p, region, session))
	}
	return entries
}

// recordRestores sets "restores" and marks the document's patches whose function no longer holds our values.
func recordRestores(d *doc.Document, patches []doc.Patch, restores []doc.Restore) error {
	if err := d.Set(doc.FieldRestores, restores); err != nil {
		return err
	}
	done := map[string]bool{}
	for _, r := range restores {
		switch r.State {
		case doc.RestoreRestored, doc.RestorePartial, doc.RestoreNotNeeded:
			done[r.Function] = true
		}
	}
	for i := range patches {
		if done[patches[i].Function] {
			if err := d.Set(fmt.Sprintf("%s.%d.state", doc.FieldPatches, i), doc.PatchRestored); err != nil {
				return err
			}
		}
	}
	return nil
}

// entryNames lists the functions of journal entries, for progress.
func entryNames(entries []lambdaenv.Entry) []string {
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Function
	}
	return names
}

package lambdaenv

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"golang.org/x/sync/errgroup"

	"github.com/stptunnel/stptunnel/pkg/doc"
)

// ReasonChangedSincePatch is why restore keeps a key: it no longer holds the value the patch wrote.
const ReasonChangedSincePatch = "changed-since-patch"

// RestoreOptions narrow and widen a restore.
type RestoreOptions struct {
	// Force also puts back the keys changed since the patch.
	Force bool
	// Functions limits the restore to these functions (names or ARNs); all when empty.
	Functions []string
	// Session limits the restore to this session's patches: entries recording another session (or none) are left
	// out, and a function whose marker another session wrote since is left as it is.
	Session string
}

// Restore puts back what the entries record, up to Concurrency calls at once, and returns one doc.Restore per
// function restored, in the order of entries. Per key it is a compare-and-swap: the before value is put back (or the
// key removed, when the patch added it) only while the key still holds a value the session wrote; a key changed
// since is kept and reported (unless Force). Only the keys of the entries are ever written. A function deleted
// meanwhile is gone, not an error. A function whose keys are all back already needs no write (not-needed), so
// Restore is idempotent. Every finished function leaves the journal (when the Patcher has one), all in one write at
// the end; a failed one stays.
//
// The session marker goes in the same update as the keys: it is removed while it is the entry's session's (a
// marker another session wrote since, taking the function over, stays: that session restores what it holds, and
// the keys it changed are kept, with the event naming it). An entry FromMarker restores what the function's
// marker records, as it is when the function is read: each key while it still has the marker's digest.
// The error joins a *FunctionError per failed function: those may still be patched.
func (p *Patcher) Restore(ctx context.Context, entries []Entry, opts RestoreOptions) ([]doc.Restore, error) {
	var selected []Entry
	for _, e := range entries {
		if e.State == doc.PatchDryRun || !wanted(e, opts.Functions) || opts.Session != "" && !e.FromMarker && e.Session != opts.Session {
			continue
		}
		selected = append(selected, e)
	}
	results := make([]doc.Restore, len(selected))
	errs := make([]error, len(selected))
	slots := newAPISlots(p.concurrency())
	g, ctx := errgroup.WithContext(ctx)
	for i, e := range selected {
		g.Go(func() error {
			results[i] = p.restoreOne(ctx, e, opts, slots)
			if results[i].State == doc.RestoreFailed {
				errs[i] = &FunctionError{Function: e.Function, Err: errors.New(results[i].Message)}
				return nil
			}
			if p.Journal != nil && !p.DryRun && !e.FromMarker {
				p.Journal.StageRemove(e.ARN)
			}
			return nil
		})
	}
	_ = g.Wait()
	if p.Journal != nil && !p.DryRun {
		// One write for every function restored: until it is on disk their entries stay, and a restore run again
		// finds them restored already (not-needed).
		if err := p.Journal.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("restoring: clearing the restored functions from the journal: %w", err))
		}
	}
	return results, errors.Join(errs...)
}

func (p *Patcher) restoreOne(ctx context.Context, e Entry, opts RestoreOptions, slots apiSlots) doc.Restore {
	ref := e.ARN
	if ref == "" {
		ref = e.Function
	}
	w := writer{p: p, ref: ref, region: e.Region, name: e.Function, slots: slots}
	var (
		kept   []doc.Kept
		holder *Marker // the session that holds the function now, when it is not e's
	)
	_, wrote, err := w.run(ctx, func(cfg config) (map[string]string, bool, error) {
		changes, removeMarker, h, err := e.restoring(cfg.env, opts.Session)
		if err != nil {
			return nil, false, err
		}
		var next map[string]string
		next, kept = compareAndSwap(cfg.env, changes, opts.Force)
		if h != nil && !h.live(next) {
			removeMarker, h = true, nil // another session's marker with nothing left to restore: stale
		}
		if removeMarker {
			delete(next, MarkerKey)
		}
		holder = h
		return next, !p.DryRun && !maps.Equal(next, cfg.env), nil
	}, nil)
	r := doc.Restore{Function: e.Function, Kept: kept}
	switch {
	case errors.Is(err, ErrNotFound):
		r.State, r.Kept = doc.RestoreGone, nil
		p.emit(Event{Kind: EventGone, Function: e.Function})
		return r
	case err != nil:
		r.State, r.Message = doc.RestoreFailed, fmt.Sprintf("restoring %s: %v", e.Function, err)
		p.emit(Event{Kind: EventFailed, Function: e.Function, Err: err})
		return r
	}
	if wrote && p.Wait {
		if _, err := w.waitIdle(ctx); err != nil {
			// The old values are written; only their going live is unconfirmed. Not a failure to restore.
			p.emit(Event{Kind: EventRetry, Function: e.Function, Err: fmt.Errorf("restored, but %w", err)})
		}
	}
	switch {
	case len(kept) > 0:
		r.State = doc.RestorePartial
		keys := make([]string, len(kept))
		for i, k := range kept {
			keys[i] = k.Env
		}
		if holder != nil {
			r.Message = fmt.Sprintf("session %s of %s holds it now (taken over since %s): it restores the keys kept", holder.ID, holder.By, holder.At)
		}
		p.emit(Event{Kind: EventKept, Function: e.Function, Keys: keys, Holder: holder})
	case wrote:
		r.State = doc.RestoreRestored
		p.emit(Event{Kind: EventRestored, Function: e.Function})
	default:
		r.State = doc.RestoreNotNeeded
		if holder != nil {
			r.Message = fmt.Sprintf("session %s of %s holds it now, not session %s", holder.ID, holder.By, opts.Session)
		}
		p.emit(Event{Kind: EventUpToDate, Function: e.Function, Holder: holder})
	}
	return r
}

// restoring decides, from the function's variables as read, what restoring e puts back: the keys (the entry's, or
// its marker's for an entry FromMarker), whether the marker goes, and the marker of another session that holds the
// function now (nil when none does). session, when set, is the only session to restore.
func (e Entry) restoring(env map[string]string, session string) (changes []Change, removeMarker bool, holder *Marker, err error) {
	m, marked, merr := MarkerOf(env)
	switch {
	case e.FromMarker && !marked:
		return nil, false, nil, nil // restored already, or never patched
	case e.FromMarker && merr != nil:
		return nil, false, nil, fmt.Errorf("reading %s: %w", MarkerKey, merr)
	case e.FromMarker && session != "" && m.ID != session:
		return nil, false, &m, nil
	case e.FromMarker:
		return m.changes(), true, nil, nil
	case marked && merr == nil && e.Session != "" && m.ID == e.Session:
		return e.Changes, true, nil, nil
	case marked && merr == nil:
		return e.Changes, false, &m, nil
	}
	return e.Changes, false, nil, nil
}

// compareAndSwap returns the variables with every journalled key the session still owns put back, and the keys
// kept because someone changed them since (all put back with force).
func compareAndSwap(current map[string]string, changes []Change, force bool) (map[string]string, []doc.Kept) {
	next := maps.Clone(current)
	var kept []doc.Kept
	for _, c := range changes {
		v, has := current[c.Env]
		switch {
		case has && c.ours(v):
		case c.Existed && has && v == c.Before, !c.Existed && !has:
			continue // already back
		case !force:
			kept = append(kept, doc.Kept{Env: c.Env, Reason: ReasonChangedSincePatch})
			continue
		}
		if c.Existed {
			next[c.Env] = c.Before
		} else {
			delete(next, c.Env)
		}
	}
	return next, kept
}

// wanted reports whether e is among the functions named (all when none are).
func wanted(e Entry, functions []string) bool {
	if len(functions) == 0 {
		return true
	}
	for _, f := range functions {
		if sameFunction(f, e.ARN) || sameFunction(f, e.Function) {
			return true
		}
	}
	return false
}

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
}

// Restore puts back what the entries record, up to Concurrency calls at once, and returns one doc.Restore per
// function restored, in the order of entries. Per key it is a compare-and-swap: the before value is put back (or the
// key removed, when the patch added it) only while the key still holds a value the session wrote; a key changed
// since is kept and reported (unless Force). Only the keys of the entries are ever written. A function deleted
// meanwhile is gone, not an error. A function whose keys are all back already needs no write (not-needed), so
// Restore is idempotent. Every finished function leaves the journal (when the Patcher has one), all in one write at
// the end; a failed one stays.
// The error joins a *FunctionError per failed function: those may still be patched.
func (p *Patcher) Restore(ctx context.Context, entries []Entry, opts RestoreOptions) ([]doc.Restore, error) {
	var selected []Entry
	for _, e := range entries {
		if e.State == doc.PatchDryRun || !wanted(e, opts.Functions) {
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
			results[i] = p.restoreOne(ctx, e, opts.Force, slots)
			if results[i].State == doc.RestoreFailed {
				errs[i] = &FunctionError{Function: e.Function, Err: errors.New(results[i].Message)}
				return nil
			}
			if p.Journal != nil && !p.DryRun {
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

func (p *Patcher) restoreOne(ctx context.Context, e Entry, force bool, slots apiSlots) doc.Restore {
	ref := e.ARN
	if ref == "" {
		ref = e.Function
	}
	w := writer{p: p, ref: ref, region: e.Region, name: e.Function, slots: slots}
	var kept []doc.Kept
	_, wrote, err := w.run(ctx, func(cfg config) (map[string]string, bool, error) {
		var next map[string]string
		next, kept = compareAndSwap(cfg.env, e.Changes, force)
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
		p.emit(Event{Kind: EventKept, Function: e.Function, Keys: keys})
	case wrote:
		r.State = doc.RestoreRestored
		p.emit(Event{Kind: EventRestored, Function: e.Function})
	default:
		r.State = doc.RestoreNotNeeded
		p.emit(Event{Kind: EventUpToDate, Function: e.Function})
	}
	return r
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

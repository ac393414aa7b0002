package session

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
)

// RestoreOptions are env restore's inputs beyond the document.
type RestoreOptions struct {
	// Force also restores keys that changed since the patch.
	Force bool
	// Functions limits the restore to these functions (names or ARNs); none means all.
	Functions []string
}

// Restore is the env restore step: it restores the document's "patches" or, when it has none, everything the
// journal in the state dir holds, and records the outcome in d's "restores". A function left patched ends it
// with a *LeftPatchedError; the journal then keeps it.
func Restore(ctx context.Context, d *doc.Document, opts RestoreOptions, env Env) error {
	patches, err := d.Patches()
	if err != nil {
		return asInput(err)
	}
	state, err := OpenState(env.StateDir) // never restore under a running session's feet: it owns the journal
	if err != nil {
		return err
	}
	defer state.Close()
	entries := restoreEntries(patches, d.Region(), state.Journal)
	if len(entries) == 0 {
		env.report(NothingToDo{Message: "Nothing to restore: no patches on stdin and no journal in " + env.StateDir})
		return nil
	}
	region := d.Region()
	if region == "" {
		region = entries[0].Region
	}
	p, err := newRestorer(ctx, region, state.Journal, env)
	if err != nil {
		return err
	}
	env.report(Restoring{Functions: entryNames(entries)})
	restores, restoreErr := p.Restore(ctx, entries, lambdaenv.RestoreOptions{Force: opts.Force, Functions: opts.Functions})
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
// wrote (a re-patch since the document was printed).
func restoreEntries(patches []doc.Patch, region string, journal *lambdaenv.Journal) []lambdaenv.Entry {
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
		entries = append(entries, lambdaenv.EntryFromPatch(p, region))
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

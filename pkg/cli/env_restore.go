package cli

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/urfave/cli/v2"

	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
)

func (a *app) envRestoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "put every patched variable back, from the document on stdin or the journal in the state dir",
		Description: "Restores the \"patches\" of the document on stdin or, when stdin is a terminal or empty, everything the\n" +
			"journal (STATE_DIR/journal.json) holds: the way to finish a session that crashed. A key is put back only\n" +
			"while it still holds the value the patch wrote; keys changed since (a deploy) are kept and reported.\n" +
			"Exits 3 when a function is left patched; the journal is then kept, and running this again finishes it.",
		Flags: withGlobals([]cli.Flag{
			&cli.BoolFlag{Name: flagForce, Category: catPatch, Usage: "also restore keys that changed since the patch"},
			&cli.StringSliceFlag{Name: flagFunction, Category: catScope, Usage: "only this function, `NAME|ARN` (repeatable)"},
		}),
		Action: a.envRestore,
	}
}

func (a *app) envRestore(c *cli.Context) error {
	d, err := a.readDocument()
	if err != nil {
		return err
	}
	patches, err := d.Patches()
	if err != nil {
		return asUsage(err)
	}
	lock, err := lockStateDir(stateDir(c)) // never restore under a running session's feet: it owns the journal
	if err != nil {
		return err
	}
	defer lock.release()
	journal, err := lambdaenv.OpenJournal(stateDir(c))
	if err != nil {
		return err
	}
	entries := restoreEntries(patches, d.Region(), journal)
	if len(entries) == 0 {
		a.ui.info("Nothing to restore: no patches on stdin and no journal in %s", stateDir(c))
		return a.writeDocument(d)
	}
	region := d.Region()
	if region == "" {
		region = entries[0].Region
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := a.awsConfig(ctx, c, region)
	if err != nil {
		return err
	}
	p := &lambdaenv.Patcher{Client: lambda.NewFromConfig(cfg), Journal: journal, Wait: true, Progress: a.restoreProgress}
	a.ui.info("Restoring Lambda env vars...")
	restores, restoreErr := p.Restore(ctx, entries, lambdaenv.RestoreOptions{Force: c.Bool(flagForce), Functions: c.StringSlice(flagFunction)})
	if err := recordRestores(d, patches, restores); err != nil {
		return err
	}
	if err := a.finishDocument(d, doc.FieldRestores); err != nil {
		return err
	}
	if restoreErr != nil {
		return leftPatched(fmt.Errorf("left patched: %s\n%w\n  the journal %s is kept: run `stptunnel env restore` to finish",
			functionList(restoreErr), restoreErr, journal.Path()))
	}
	a.reportRestored(restores)
	return nil
}

// reportRestored prints the seed's closing line of a restore; functions deleted meanwhile are not counted.
func (a *app) reportRestored(restores []doc.Restore) {
	n := 0
	for _, r := range restores {
		if r.State != doc.RestoreGone {
			n++
		}
	}
	a.ui.ok("Lambda env vars restored (%s)", plural(n, "function"))
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

// restoreProgress prints the restore's events in the seed's words. Only names are printed, never values.
func (a *app) restoreProgress(e lambdaenv.Event) {
	switch e.Kind {
	case lambdaenv.EventKept:
		a.ui.warn("Keeping %s on %s: changed since the patch (a deploy?), so it is not ours to put back; --force restores it anyway",
			strings.Join(e.Keys, ", "), e.Function)
	case lambdaenv.EventGone:
		a.ui.warn("Skipping %s: the function no longer exists", e.Function)
	case lambdaenv.EventFailed:
		a.ui.warn("Could not restore %s: %v", e.Function, e.Err)
	}
}

// recordRestores sets "restores" and marks the document's patches whose function no longer holds our values.
func recordRestores(d *doc.Document, patches []doc.Patch, restores []doc.Restore) error {
	if err := d.Set(doc.FieldRestores, restores); err != nil {
		return err
	}
	if len(patches) == 0 {
		return nil
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

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

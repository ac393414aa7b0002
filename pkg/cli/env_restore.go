package cli

import (
	"errors"

	"github.com/urfave/cli/v2"

	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/session"
)

func (a *app) envRestoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "put every patched variable back, from the document on stdin, the journal in the state dir, or the functions' session markers",
		Description: "Restores the \"patches\" of the document on stdin or, when stdin is a terminal or empty, everything the\n" +
			"journal (STATE_DIR/journal.json) holds: the way to finish a session that crashed. A key is put back only\n" +
			"while it still holds the value the patch wrote; keys changed since (a deploy) are kept and reported.\n" +
			"With --function, --prefix or --stack, only those functions; and a function of the scope that neither the\n" +
			"document nor the journal holds is restored from its session marker (STPTUNNEL_SESSION), from any machine.\n" +
			"Exits 3 when a function is left patched; the journal is then kept, and running this again finishes it.",
		Flags: withGlobals(outFlag(), []cli.Flag{
			&cli.BoolFlag{Name: flagForce, Category: catPatch, Usage: "also restore keys that changed since the patch"},
			&cli.StringFlag{Name: flagSession, Category: catScope, Usage: "only the patches and markers of session `ID`"},
		}, selectFlags()),
		Action: a.envRestore,
	}
}

func (a *app) envRestore(c *cli.Context) error {
	opts, err := restoreOptions(c)
	if err != nil {
		return err
	}
	docs, err := a.readDocuments()
	if err != nil {
		return err
	}
	ctx, cancel := a.interruptible(c.Context)
	defer cancel()
	var leftPatched []error
	for _, d := range docs {
		restoreErr := session.Restore(ctx, d, opts, a.sessionEnv(c))
		var patched *session.LeftPatchedError
		if restoreErr != nil && !errors.As(restoreErr, &patched) {
			return restoreErr // nothing was restored from this document: nothing to print
		}
		if err := a.finishDocument(d, doc.FieldRestores); err != nil {
			return err
		}
		if restoreErr != nil {
			leftPatched = append(leftPatched, restoreErr)
		}
	}
	return errors.Join(leftPatched...)
}

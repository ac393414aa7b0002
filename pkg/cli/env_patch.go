package cli

import (
	"errors"

	"github.com/urfave/cli/v2"

	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/session"
)

func (a *app) envPatchCommand() *cli.Command {
	return &cli.Command{
		Name:  "patch",
		Usage: "rewrite the bound variables of each function to its tunnel (journalled, RevisionId-checked)",
		Description: "Reads the document on stdin (functions with their bindings, and tunnels), points each bound variable\n" +
			"at its resource's tunnel, and writes the document with \"patches\". Every change is in STATE_DIR/journal.json\n" +
			"before it is written, so `stptunnel env restore` can always put the variables back.",
		Flags:  withGlobals(patchFlags(), outFlag()),
		Action: a.envPatch,
	}
}

func (a *app) envPatch(c *cli.Context) error {
	opts, err := patchOptions(c)
	if err != nil {
		return err
	}
	d, err := a.readDocument()
	if err != nil {
		return err
	}
	ctx, cancel := a.interruptible(c.Context)
	defer cancel()
	patchErr := session.Patch(ctx, d, opts, a.sessionEnv(c))
	var input *session.InputError
	if errors.As(patchErr, &input) {
		return patchErr // nothing was done: no document to print
	}
	if err := a.finishDocument(d, doc.FieldPatches); err != nil {
		return err
	}
	return patchErr
}

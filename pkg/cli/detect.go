package cli

import (
	"github.com/urfave/cli/v2"

	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/session"
)

func (a *app) detectCommand() *cli.Command {
	return &cli.Command{
		Name:  "detect",
		Usage: "find the deployed functions that reference a local resource",
		Description: "Reads the document on stdin (or starts an empty one), adds the resources given with --local, lists\n" +
			"the functions in scope and writes the document with \"functions\" (their bindings) and \"skipped\".\n" +
			"--function selects exactly the functions named; --stack and --prefix may be combined.",
		Flags:  withGlobals([]cli.Flag{localFlag()}, scopeFlags(), outFlag()),
		Action: a.detectAction,
	}
}

func (a *app) detectAction(c *cli.Context) error {
	locals, err := a.locals(c)
	if err != nil {
		return err
	}
	opts, err := a.detectOptions(c, locals)
	if err != nil {
		return err
	}
	d, err := a.readDocument()
	if err != nil {
		return err
	}
	ctx, cancel := a.interruptible(c.Context)
	defer cancel()
	if err := session.Detect(ctx, d, opts, a.sessionEnv(c)); err != nil {
		return err
	}
	return a.finishDocument(d, doc.FieldFunctions, doc.FieldSkipped)
}

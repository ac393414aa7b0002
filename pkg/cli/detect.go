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
			"--function selects exactly the functions named; --stack and --prefix may be combined.\n\n" +
			"A variable is bound to a resource, first way wins:\n" +
			"  - by Stacktape's convention: STP_<NAME>_CONNECTION_STRING, _HOST, _PORT or _ENDPOINT, where NAME is the\n" +
			"    resource's name in SNAKE_CASE (--local postgresDb=... binds STP_POSTGRES_DB_*, myDatabase MY_DATABASE);\n" +
			"  - by --map ENV=RESOURCE (DATABASE_URL=postgresDb);\n" +
			"  - by value: a variable whose value already names the resource's local address.\n" +
			"A variable bound by name points at the tunnel during the session whatever it held (the cloud database);\n" +
			"one bound by value is rewritten in place. Each binding says which (\"action\": replace | in-place).",
		Flags:  withGlobals([]cli.Flag{localFlag()}, scopeFlags(), []cli.Flag{tunnelHostFlag()}, outFlag()),
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

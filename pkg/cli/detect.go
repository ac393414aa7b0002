package cli

import "github.com/urfave/cli/v2"

func (a *app) detectCommand() *cli.Command {
	return &cli.Command{
		Name:  "detect",
		Usage: "find the deployed functions that reference a local resource",
		Description: "Reads the document on stdin (or starts an empty one), adds the resources given with --local, lists\n" +
			"the functions in scope and writes the document with \"functions\" (their bindings) and \"skipped\".",
		Flags:  withGlobals([]cli.Flag{localFlag()}, scopeFlags()),
		Action: a.notBuiltReading("detect", 6),
	}
}

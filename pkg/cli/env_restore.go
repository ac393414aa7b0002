package cli

import "github.com/urfave/cli/v2"

func (a *app) envRestoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "put every patched variable back, from the document on stdin or the journal in the state dir",
		Flags: withGlobals([]cli.Flag{
			&cli.BoolFlag{Name: flagForce, Category: catPatch, Usage: "also restore keys that changed since the patch"},
			&cli.StringSliceFlag{Name: flagFunction, Category: catScope, Usage: "only this function, `NAME|ARN` (repeatable)"},
		}),
		Action: a.notBuiltReading("env restore", 8),
	}
}

package cli

import "github.com/urfave/cli/v2"

func (a *app) envPatchCommand() *cli.Command {
	return &cli.Command{
		Name:   "patch",
		Usage:  "rewrite the bound variables of each function to its tunnel (journalled, RevisionId-checked)",
		Flags:  withGlobals(patchFlags()),
		Action: a.notBuiltReading("env patch", 8),
	}
}

package cli

import "github.com/urfave/cli/v2"

func (a *app) devCommand() *cli.Command {
	return &cli.Command{
		Name:      "dev",
		Usage:     "the whole session: detect, open tunnels, patch; restore and close on exit",
		ArgsUsage: "[-- COMMAND ARGS...]",
		Flags: withGlobals([]cli.Flag{localFlag()}, scopeFlags(), tunnelFlags(), patchFlags(), []cli.Flag{
			&cli.BoolFlag{Name: flagNoTunnel, Category: catTunnel, Usage: "open no tunnel and patch nothing: only run COMMAND"},
		}),
		Action: a.notBuiltReading("dev", 9),
	}
}

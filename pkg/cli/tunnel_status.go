package cli

import "github.com/urfave/cli/v2"

func (a *app) tunnelStatusCommand() *cli.Command {
	return &cli.Command{
		Name:   "status",
		Usage:  "show the tunnels a detached session holds and whether each is alive",
		Flags:  withGlobals(),
		Action: notBuilt("tunnel status", 7),
	}
}

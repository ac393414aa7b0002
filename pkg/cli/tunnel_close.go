package cli

import "github.com/urfave/cli/v2"

func (a *app) tunnelCloseCommand() *cli.Command {
	return &cli.Command{
		Name:   "close",
		Usage:  "end the detached session and its tunnels",
		Flags:  withGlobals(),
		Action: notBuilt("tunnel close", 7),
	}
}

package cli

import "github.com/urfave/cli/v2"

func (a *app) tunnelCommand() *cli.Command {
	return &cli.Command{
		Name:  "tunnel",
		Usage: "open, inspect and close the bore tunnels to local resources (open | status | close)",
		Subcommands: []*cli.Command{
			a.tunnelOpenCommand(),
			a.tunnelStatusCommand(),
			a.tunnelCloseCommand(),
		},
	}
}

package cli

import "github.com/urfave/cli/v2"

func (a *app) envCommand() *cli.Command {
	return &cli.Command{
		Name:  "env",
		Usage: "point the functions' environment variables at the tunnels, and put them back (patch | restore)",
		Subcommands: []*cli.Command{
			a.envPatchCommand(),
			a.envRestoreCommand(),
		},
	}
}

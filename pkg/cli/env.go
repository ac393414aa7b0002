package cli

import "github.com/urfave/cli/v2"

func (a *app) envCommand() *cli.Command {
	return &cli.Command{
		Name:  "env",
		Usage: "point the functions' environment variables at the tunnels, put them back, see who holds them (patch | restore | status)",
		Subcommands: []*cli.Command{
			a.envPatchCommand(),
			a.envRestoreCommand(),
			a.envStatusCommand(),
		},
	}
}

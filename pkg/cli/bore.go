package cli

import "github.com/urfave/cli/v2"

// boreCommand is the bore-compatible CLI (bore 0.5 flags and env vars), so one binary is both ends of a tunnel.
func (a *app) boreCommand() *cli.Command {
	return &cli.Command{
		Name:  "bore",
		Usage: "bore-compatible client and server (local | server)",
		Subcommands: []*cli.Command{
			{Name: "local", Usage: "expose LOCAL_PORT through a bore server", ArgsUsage: "LOCAL_PORT", Action: notBuilt("bore local", 3)},
			{Name: "server", Usage: "run a bore server", Action: notBuilt("bore server", 3)},
		},
	}
}

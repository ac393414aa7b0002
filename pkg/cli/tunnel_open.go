package cli

import "github.com/urfave/cli/v2"

func (a *app) tunnelOpenCommand() *cli.Command {
	return &cli.Command{
		Name:  "open",
		Usage: "open one tunnel per resource, print the document, hold the tunnels until SIGINT/SIGTERM",
		Flags: withGlobals([]cli.Flag{localFlag()}, tunnelFlags(), []cli.Flag{
			&cli.BoolFlag{Name: flagDetach, Category: catTunnel, Usage: "leave the tunnels to a background process and return"},
		}),
		Action: a.notBuiltReading("tunnel open", 7),
	}
}

package cli

import "github.com/urfave/cli/v2"

func (a *app) demoCommand() *cli.Command {
	return &cli.Command{
		Name:   "demo",
		Usage:  "run the whole flow against an embedded Lambda emulator and bore server: no AWS account needed",
		Flags:  withGlobals(),
		Action: notBuilt("demo", 9),
	}
}

package cli

import "github.com/urfave/cli/v2"

// hiddenCommands are not part of the contract: only the processes stptunnel starts itself use them (the detached
// tunnel holder). They are hidden from --help.
func (a *app) hiddenCommands() []*cli.Command {
	return []*cli.Command{a.tunnelHoldCommand()}
}

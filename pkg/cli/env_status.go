package cli

import (
	"github.com/urfave/cli/v2"

	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/session"
)

func (a *app) envStatusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "list the functions that carry a session marker: who holds them, since when, and whether their tunnels answer",
		Description: "Reads every function of the scope (--function, --prefix, --stack; none: the whole region) and lists\n" +
			"those that carry a session marker (STPTUNNEL_SESSION): the session, who started it and when, the keys it\n" +
			"changed (names only, never values) and whether its tunnels still answer (a TCP dial of each public address).\n" +
			"The document (\"markers\") goes to stdout, a table to stderr. Writes nothing.",
		Flags:  withGlobals(outFlag(), selectFlags()),
		Action: a.envStatus,
	}
}

func (a *app) envStatus(c *cli.Context) error {
	scope, err := scopeOptions(c)
	if err != nil {
		return err
	}
	d, err := a.readDocument()
	if err != nil {
		return err
	}
	ctx, cancel := a.interruptible(c.Context)
	defer cancel()
	if err := session.EnvStatus(ctx, d, session.StatusOptions{Scope: scope}, a.sessionEnv(c)); err != nil {
		return err
	}
	return a.finishDocument(d, doc.FieldMarkers)
}

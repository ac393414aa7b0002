package cli

import (
	"errors"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stptunnel/stptunnel/pkg/tunnel"
)

// closeGrace is how long `tunnel close` waits after SIGTERM before it kills the background process.
const closeGrace = 5 * time.Second

func (a *app) tunnelCloseCommand() *cli.Command {
	return &cli.Command{
		Name:  "close",
		Usage: "end the detached session and its tunnels",
		Description: "Stops the background process `tunnel open --detach` left holding the tunnels (SIGTERM, then SIGKILL\n" +
			"after 5 s) and removes its record from the state dir. Run `stptunnel env restore` first if functions still\n" +
			"point at the tunnels.",
		Flags:  withGlobals(),
		Action: a.tunnelClose,
	}
}

func (a *app) tunnelClose(c *cli.Context) error {
	dir := stateDir(c)
	st, err := tunnel.ReadState(dir)
	if errors.Is(err, tunnel.ErrNoSession) {
		a.ui.info("No detached tunnel session to close")
		return nil
	}
	if err != nil {
		return err
	}
	if !st.Alive() {
		if err := tunnel.RemoveState(dir, 0); err != nil {
			return err
		}
		a.ui.info("The detached session (process %d) had already ended; its record is removed", st.PID)
		return nil
	}
	final, err := tunnel.Stop(c.Context, dir, st, closeGrace)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, t := range final.Tunnels {
		a.ui.info("%s (%s) carried: %s", t.Resource, t.Public, activityLine(t.Activity, now))
	}
	a.ui.ok("Tunnels closed (%s, process %d)", plural(len(st.Tunnels), "tunnel"), st.PID)
	// The job summary says what the tunnels carried during the job (the Action's post step closes them).
	if a.gh != nil {
		var b strings.Builder
		activityTable(final.Tunnels).render(&b, a.ui.redact)
		if err := a.gh.summaryAppend(b.String()); err != nil {
			a.ui.warn("writing the job summary: %v", err)
		}
	}
	return nil
}

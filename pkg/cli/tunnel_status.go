package cli

import (
	"errors"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/tunnel"
)

func (a *app) tunnelStatusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the tunnels a detached session holds, the bore server each is on, and whether each is alive",
		Description: "Prints the document with the session's \"tunnels\" (each with its \"server\") on stdout and one line per\n" +
			"tunnel on stderr.\n" +
			"Exits 1 when no detached session runs or when one of its tunnels does not accept connections.",
		Flags:  withGlobals(outFlag()),
		Action: a.tunnelStatus,
	}
}

func (a *app) tunnelStatus(c *cli.Context) error {
	dir := stateDir(c)
	st, err := tunnel.ReadState(dir)
	if errors.Is(err, tunnel.ErrNoSession) {
		a.ui.info("No detached tunnel session (state dir %s)", dir)
		return exitWith(ExitFailed)
	}
	if err != nil {
		return err
	}
	if !st.Alive() {
		a.ui.warn("The detached session (process %d) is no longer running; `stptunnel tunnel close` removes its record", st.PID)
		return exitWith(ExitFailed)
	}
	probes := make([]error, len(st.Tunnels))
	var wg sync.WaitGroup
	for i, t := range st.Tunnels {
		wg.Go(func() { probes[i] = tunnel.ProbeTunnel(c.Context, t, 3*time.Second) })
	}
	wg.Wait()
	down := 0
	now := time.Now()
	for i, t := range st.Tunnels {
		if probes[i] != nil {
			down++
			a.ui.warn("%s: %s → %s (%s): not reachable through bore server %s: %v", t.Resource, t.Local, t.Public, t.Engine, t.Server, probes[i])
		} else {
			a.ui.ok("%s: %s → %s (%s): alive on bore server %s", t.Resource, t.Local, t.Public, t.Engine, t.Server)
		}
		a.ui.plain("    %s", activityLine(t.Activity, now))
	}
	a.ui.info("Held by process %d since %s", st.PID, st.Started.Local().Format(time.DateTime))
	d := doc.New()
	if err := d.Set(doc.FieldTunnels, st.Tunnels); err != nil {
		return err
	}
	if err := a.writeDocument(d); err != nil {
		return err
	}
	if down > 0 {
		return exitWith(ExitFailed)
	}
	return nil
}

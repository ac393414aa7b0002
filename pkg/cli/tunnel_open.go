package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/session"
	"github.com/stptunnel/stptunnel/pkg/tunnel"
)

// holdCommand is the hidden command a detached session runs in the background process.
const holdCommand = "tunnel-hold"

func (a *app) tunnelOpenCommand() *cli.Command {
	return &cli.Command{
		Name:  "open",
		Usage: "open one tunnel per resource, print the document, hold the tunnels until SIGINT/SIGTERM",
		Description: "Opens one bore tunnel per resource of the document on stdin and of --local, after checking that each\n" +
			"local service accepts connections (start failures are retried twice, 2 s apart, then the next --to server is\n" +
			"tried). Prints the document with \"tunnels\" once all are up, then holds them until SIGINT/SIGTERM,\n" +
			"reconnecting any that drop: a tunnel whose server stays unreachable past --reconnect-window moves to the next\n" +
			"server; one that no server takes back ends the command (exit 1). --detach leaves them to a background process\n" +
			"instead (`tunnel status`, `tunnel close`).",
		Flags: withGlobals([]cli.Flag{localFlag()}, tunnelFlags(), outFlag(), []cli.Flag{
			&cli.BoolFlag{Name: flagDetach, Category: catTunnel, Usage: "leave the tunnels to a background process and return"},
		}),
		Action: a.tunnelOpen,
	}
}

func (a *app) tunnelOpen(c *cli.Context) error {
	a.relayClient()
	locals, err := a.locals(c)
	if err != nil {
		return err
	}
	opts, err := a.tunnelOptions(c, locals)
	if err != nil {
		return err
	}
	d, err := a.readDocument()
	if err != nil {
		return err
	}
	specs, err := session.TunnelSpecs(d, opts)
	if err != nil {
		return err
	}
	ctx, cancel := a.interruptible(c.Context)
	defer cancel()
	env := a.sessionEnv(c)
	if c.Bool(flagDetach) {
		holder, err := a.holder(c)
		if err != nil {
			return err
		}
		if _, err := session.DetachTunnels(ctx, d, specs, opts, holder, env); err != nil {
			return err
		}
		return a.finishDocument(d, doc.FieldTunnels)
	}
	s, err := session.OpenTunnels(ctx, d, specs, opts, env)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := a.finishDocument(d, doc.FieldTunnels); err != nil {
		return err
	}
	a.ui.info("Holding %s; Ctrl-C closes them", plural(len(specs), "tunnel"))
	activity := time.NewTicker(time.Second)
	defer activity.Stop()
	for {
		select {
		case <-activity.C:
			a.reportActivity(s.Activity())
		case <-ctx.Done():
			a.ui.setStatus(statusTunnels)
			s.Close()
			a.ui.ok("Tunnels closed")
			return nil
		case ev := <-s.Events():
			a.reportTunnelEvent(ev)
			if ev.Kind == tunnel.Lost {
				s.Close()
				return exitWith(ExitFailed)
			}
		}
	}
}

// holder is the background process of a detached session: this executable, running the hidden hold command.
func (a *app) holder(c *cli.Context) (session.Holder, error) {
	exe, err := os.Executable()
	if err != nil {
		return session.Holder{}, fmt.Errorf("finding this executable to run in the background: %w", err)
	}
	dir, err := filepath.Abs(stateDir(c))
	if err != nil {
		return session.Holder{}, err
	}
	args := []string{exe, holdCommand, "--" + flagStateDir, dir}
	if globalBool(c, flagQuiet) {
		args = append(args, "--"+flagQuiet)
	}
	return session.Holder{Path: exe, Args: args}, nil
}

// tunnelHoldCommand runs in the background process of `tunnel open --detach`.
func (a *app) tunnelHoldCommand() *cli.Command {
	return &cli.Command{
		Name:   holdCommand,
		Hidden: true,
		Usage:  "hold the tunnels of a detached session (started by `tunnel open --detach`)",
		Flags:  withGlobals(),
		Action: a.tunnelHold,
	}
}

func (a *app) tunnelHold(c *cli.Context) error {
	ready, ok := a.stdout.(io.WriteCloser)
	if !ok {
		return errors.New("the readiness pipe is not closable")
	}
	a.relayClient()
	ctx, cancel := a.interruptible(c.Context)
	defer cancel()
	a.ui.info("Holding the tunnels of a detached session (process %d)", os.Getpid())
	opts := tunnel.Options{RetryDelay: a.retryDelay()}
	if err := tunnel.Hold(ctx, a.stdin, ready, stateDir(c), opts, a.reportTunnelEvent); err != nil {
		return err
	}
	a.ui.ok("Tunnels closed")
	return nil
}

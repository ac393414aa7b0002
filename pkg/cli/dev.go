package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/session"
	"github.com/stptunnel/stptunnel/pkg/statedir"
)

func (a *app) devCommand() *cli.Command {
	return &cli.Command{
		Name:      "dev",
		Usage:     "the whole session: detect, open tunnels, patch; restore and close on exit",
		ArgsUsage: "[-- COMMAND ARGS...]",
		Description: "Takes the state-dir lock, finishes what a crashed session left in the journal, then runs detect,\n" +
			"tunnel open and env patch in one process. It then runs COMMAND (its exit ends the session and is dev's exit\n" +
			"code) or waits for Ctrl+C / SIGTERM / SIGHUP, then restores every variable and closes the tunnels, in that\n" +
			"order. A tunnel that comes back on another port, or moves to the next --to server, is followed: its\n" +
			"functions are patched again. A tunnel that no server takes back ends the session (restored, exit 1).\n" +
			"Without COMMAND the document is printed on stdout once the session is ready. Exit 3: functions were left\n" +
			"patched (the journal is kept: `stptunnel env restore` finishes it).",
		Flags: withGlobals([]cli.Flag{localFlag()}, scopeFlags(), tunnelFlags(), patchFlags(), outFlag(), []cli.Flag{
			&cli.BoolFlag{Name: flagNoTunnel, Category: catTunnel, Usage: "open no tunnel and patch nothing: only run COMMAND"},
		}),
		Action: a.dev,
	}
}

func (a *app) dev(c *cli.Context) error {
	opts, err := a.devOptions(c)
	if err != nil {
		return err
	}
	env := a.sessionEnv(c)
	if c.Bool(flagNoTunnel) {
		if len(opts.Command) == 0 {
			return usageError("--no-tunnel runs only COMMAND: give one after --")
		}
		a.report(session.CommandOnly{Command: opts.Command[0]})
		return session.RunCommand(c.Context, opts.Command, session.CommandIO{Stdin: opts.Stdin, Stdout: opts.Stdout,
			Stderr: opts.Stderr, Env: []string{envStateDir + "=" + env.StateDir}}, opts.Interrupts, env)
	}
	d, err := a.readDocument()
	if err != nil {
		return err
	}
	a.relayClient()
	return session.Dev(c.Context, d, opts, env)
}

// devOptions gathers the options of every step dev runs, and what runs while the session is up.
func (a *app) devOptions(c *cli.Context) (session.DevOptions, error) {
	patch, err := patchOptions(c)
	if err != nil {
		return session.DevOptions{}, err
	}
	opts := session.DevOptions{Patch: patch, Command: c.Args().Slice(), Stdin: a.stdin, Stdout: a.stdout, Stderr: a.stderr,
		Output: func(d *doc.Document) error { return a.devOutput(c, d) }, Interrupts: a.interrupts}
	if len(opts.Command) > 0 {
		// Before anything is patched: a session around a command that cannot start would patch and restore for
		// nothing.
		if _, err := exec.LookPath(opts.Command[0]); err != nil {
			why := "cannot be run"
			switch {
			case errors.Is(err, exec.ErrNotFound):
				why = "not found in PATH"
			case errors.Is(err, fs.ErrNotExist):
				why = "no such file"
			case errors.Is(err, fs.ErrPermission):
				why = "not executable"
			}
			return session.DevOptions{}, usageError("COMMAND %s: %s", opts.Command[0], why)
		}
	}
	if c.Bool(flagNoTunnel) {
		return opts, nil
	}
	locals, err := a.locals(c)
	if err != nil {
		return session.DevOptions{}, err
	}
	if opts.Detect, err = a.detectOptions(c, locals); err != nil {
		return session.DevOptions{}, err
	}
	if opts.Tunnel, err = a.tunnelOptions(c, locals); err != nil {
		return session.DevOptions{}, err
	}
	return opts, nil
}

// sessionFile is where dev writes its document when stdout is a terminal, in the state dir.
const sessionFile = "session.json"

// devOutput prints the ready session's document. On a terminal (and without --out) it holds connection strings
// that have no business on a screen: it goes to STATE_DIR/session.json (0600) and only the path is printed.
func (a *app) devOutput(c *cli.Context, d *doc.Document) error {
	if a.out != "" || !isTerminal(a.stdout) {
		return a.writeDocument(d)
	}
	dir := stateDir(c)
	if err := statedir.Ensure(dir); err != nil {
		return err
	}
	path := filepath.Join(dir, sessionFile)
	if err := d.WriteFile(path); err != nil {
		return fmt.Errorf("writing the session's document: %w", err)
	}
	a.ui.info("The session's document (it holds connection strings) is in %s", path)
	return nil
}

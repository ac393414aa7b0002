package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/statedir"
	"github.com/stptunnel/stptunnel/pkg/tunnel"
)

const (
	// envRetryDelay overrides the 2 s between start attempts. Not part of the contract: scripts use it to
	// test the retries quickly.
	envRetryDelay = "STPTUNNEL_RETRY_DELAY"
	// holdCommand is the hidden command a detached session runs in the background process.
	holdCommand = "tunnel-hold"
	// holdLog is where the background process writes its messages, in the state dir.
	holdLog = "tunnels.log"
)

func (a *app) tunnelOpenCommand() *cli.Command {
	return &cli.Command{
		Name:  "open",
		Usage: "open one tunnel per resource, print the document, hold the tunnels until SIGINT/SIGTERM",
		Flags: withGlobals([]cli.Flag{localFlag()}, tunnelFlags(), []cli.Flag{
			&cli.BoolFlag{Name: flagDetach, Category: catTunnel, Usage: "leave the tunnels to a background process and return"},
		}),
		Action: a.tunnelOpen,
	}
}

func (a *app) tunnelOpen(c *cli.Context) error {
	d, err := a.readDocument()
	if err != nil {
		return err
	}
	specs, err := a.tunnelSpecs(c, d)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.Bool(flagDetach) {
		return a.tunnelOpenDetached(ctx, c, d, specs)
	}
	s, err := tunnel.Open(ctx, specs, a.tunnelOptions())
	if err != nil {
		return err
	}
	defer s.Close()
	tunnels := s.Tunnels()
	for _, t := range tunnels {
		a.ui.ok("Starting tunnel: %s → %s", t.Resource, t.Public)
	}
	if err := d.Set(doc.FieldTunnels, tunnels); err != nil {
		return err
	}
	if err := a.finishDocument(d, doc.FieldTunnels); err != nil {
		return err
	}
	a.ui.info("Holding %s; Ctrl-C closes them", plural(len(tunnels), "tunnel"))
	for {
		select {
		case <-ctx.Done():
			s.Close()
			a.ui.ok("Tunnels closed")
			return nil
		case ev := <-s.Events():
			a.reportTunnelEvent(ev)
		}
	}
}

// tunnelSpecs builds one spec per resource of the document and of --local (a.resources records the --local
// ones in the document, so the next step sees them).
func (a *app) tunnelSpecs(c *cli.Context, d *doc.Document) ([]tunnel.Spec, error) {
	engine := c.String(flagEngine)
	if engine != tunnel.EngineNative && engine != tunnel.EngineBore {
		return nil, usageError("--engine %q: want %s or %s", engine, tunnel.EngineNative, tunnel.EngineBore)
	}
	resources, err := a.resources(c, d)
	if err != nil {
		return nil, err
	}
	if len(resources) == 0 {
		return nil, usageError("no resource to tunnel: pipe a document from `stptunnel detect` or give --local NAME=URL")
	}
	server := strings.TrimSpace(c.String(flagTo))
	if server == "" {
		server = defaultBoreServer
	}
	secret := c.String(flagSecret)
	a.ui.addSecret(secret)
	borePath := ""
	if engine == tunnel.EngineBore {
		exe, _ := os.Executable() // best effort: without it, --bore-path or PATH still work
		if borePath, err = tunnel.FindBore(c.String(flagBorePath), exe); err != nil {
			return nil, fmt.Errorf("--engine bore: %w", err)
		}
	}
	specs := make([]tunnel.Spec, 0, len(resources))
	for _, r := range resources {
		specs = append(specs, tunnel.Spec{Resource: r, Server: server, Secret: secret, Engine: engine, BorePath: borePath})
	}
	return specs, nil
}

func (a *app) tunnelOptions() tunnel.Options {
	opts := tunnel.Options{OnRetry: func(resource string, err error, delay time.Duration) {
		a.ui.warn("Starting tunnel %s failed (%s); retrying in %v: %v", resource, tunnel.Cause(err), delay, err)
	}}
	if v := a.getenv(envRetryDelay); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			opts.RetryDelay = d
		}
	}
	return opts
}

// reportTunnelEvent tells the user what happened to an open tunnel.
func (a *app) reportTunnelEvent(ev tunnel.Event) {
	switch ev.Kind {
	case tunnel.Down:
		a.ui.warn("Tunnel %s is down (%v): functions using it may lose connectivity; reconnecting", ev.Resource, ev.Err)
	case tunnel.Up:
		a.ui.ok("Tunnel %s reconnected → %s", ev.Resource, ev.Public)
	case tunnel.Moved:
		a.ui.warn("Tunnel %s reconnected on a new address: %s → %s (run `stptunnel env patch` again for the functions using it)",
			ev.Resource, ev.Previous, ev.Public)
	}
}

// tunnelOpenDetached hands the tunnels to a background process and returns once it holds them all.
func (a *app) tunnelOpenDetached(ctx context.Context, c *cli.Context, d *doc.Document, specs []tunnel.Spec) error {
	dir, err := filepath.Abs(stateDir(c))
	if err != nil {
		return err
	}
	if st, err := tunnel.ReadState(dir); err == nil {
		if st.Alive() {
			return fmt.Errorf("a detached tunnel session is already running (process %d): `stptunnel tunnel close` ends it", st.PID)
		}
		if err := tunnel.RemoveState(dir, st.PID); err != nil {
			return err
		}
	} else if !errors.Is(err, tunnel.ErrNoSession) {
		return err
	}
	if err := statedir.Ensure(dir); err != nil {
		return err
	}
	logPath := filepath.Join(dir, holdLog)
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("creating the log of the background process: %w", err)
	}
	defer log.Close()
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this executable to run in the background: %w", err)
	}
	args := []string{exe, holdCommand, "--" + flagStateDir, dir}
	if globalBool(c, flagQuiet) {
		args = append(args, "--"+flagQuiet)
	}
	cmd := &exec.Cmd{Path: exe, Args: args, Stderr: log}
	st, err := tunnel.Detach(ctx, cmd, specs)
	if err != nil {
		return fmt.Errorf("%w (background process log: %s)", err, logPath)
	}
	for _, t := range st.Tunnels {
		a.ui.ok("Starting tunnel: %s → %s", t.Resource, t.Public)
	}
	if err := d.Set(doc.FieldTunnels, st.Tunnels); err != nil {
		return err
	}
	if err := a.finishDocument(d, doc.FieldTunnels); err != nil {
		return err
	}
	a.ui.info("Tunnels held by process %d; `stptunnel tunnel status` shows them, `stptunnel tunnel close` ends them", st.PID)
	return nil
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
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	a.ui.info("Holding the tunnels of a detached session (process %d)", os.Getpid())
	if err := tunnel.Hold(ctx, a.stdin, ready, stateDir(c), a.tunnelOptions(), a.reportTunnelEvent); err != nil {
		return err
	}
	a.ui.ok("Tunnels closed")
	return nil
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/urfave/cli/v2"

	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
	"github.com/stptunnel/stptunnel/pkg/tunnel"
)

func (a *app) devCommand() *cli.Command {
	return &cli.Command{
		Name:      "dev",
		Usage:     "the whole session: detect, open tunnels, patch; restore and close on exit",
		ArgsUsage: "[-- COMMAND ARGS...]",
		Description: "Takes the state-dir lock, finishes what a crashed session left in the journal, then runs detect,\n" +
			"tunnel open and env patch in one process. It then runs COMMAND (its exit ends the session and is dev's exit\n" +
			"code) or waits for Ctrl+C / SIGTERM / SIGHUP, then restores every variable and closes the tunnels, in that\n" +
			"order. A tunnel that comes back on another port is followed: its functions are patched again.\n" +
			"Without COMMAND the document is printed on stdout once the session is ready. Exit 3: functions were left\n" +
			"patched (the journal is kept: `stptunnel env restore` finishes it).",
		Flags: withGlobals([]cli.Flag{localFlag()}, scopeFlags(), tunnelFlags(), patchFlags(), []cli.Flag{
			&cli.BoolFlag{Name: flagNoTunnel, Category: catTunnel, Usage: "open no tunnel and patch nothing: only run COMMAND"},
		}),
		Action: a.dev,
	}
}

// devSession is one run of `stptunnel dev`: what it opened and patched, so cleanup undoes exactly that.
type devSession struct {
	a       *app
	c       *cli.Context
	doc     *doc.Document
	journal *lambdaenv.Journal
	patcher *lambdaenv.Patcher
	tunnels *tunnel.Session
	signals chan os.Signal
}

func (a *app) dev(c *cli.Context) error {
	command := c.Args().Slice()
	concurrency := c.Int(flagConcurrency)
	if concurrency < 1 {
		return usageError("--concurrency must be at least 1, got %d", concurrency)
	}
	if c.Bool(flagNoTunnel) {
		if len(command) == 0 {
			return usageError("--no-tunnel runs only COMMAND: give one after --")
		}
		a.ui.info("--no-tunnel: running %s without tunnels", command[0])
		return a.runCommandOnly(c.Context, command)
	}
	d, err := a.readDocument()
	if err != nil {
		return err
	}

	s := &devSession{a: a, c: c, doc: d, signals: make(chan os.Signal, 4)}
	signal.Notify(s.signals, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(s.signals)

	// A signal during start-up cancels it; cleanup then undoes whatever was already done.
	parent := c.Context
	startCtx, cancelStart := context.WithCancel(parent)
	defer cancelStart()
	stopWatch, watchDone := make(chan struct{}), make(chan struct{})
	interrupted := false
	go func() {
		defer close(watchDone)
		select {
		case sig := <-s.signals:
			interrupted = true
			a.ui.info("%v: stopping", sig)
			cancelStart()
		case <-stopWatch:
		}
	}()
	c.Context = startCtx

	dir := stateDir(c)
	lock, err := lockStateDir(dir)
	if err != nil {
		return err
	}
	defer lock.release()
	if s.journal, err = lambdaenv.OpenJournal(dir); err != nil {
		return err
	}
	if err := s.recoverCrashed(startCtx); err != nil {
		return err
	}
	ready, startErr := s.start(startCtx)
	close(stopWatch)
	<-watchDone // interrupted is settled from here on
	c.Context = parent

	exit := ExitOK
	switch {
	case interrupted:
		exit = ExitFailed
	case startErr != nil:
		a.ui.fail("%v", startErr)
		exit = exitCode(startErr)
	case ready:
		exit = s.run(parent, command)
	case len(command) > 0:
		exit = s.runCommand(parent, command)
	}
	if s.cleanup() {
		return leftPatched(fmt.Errorf("functions were left patched: run `stptunnel env restore` to put them back (journal %s)", s.journal.Path()))
	}
	if exit != ExitOK {
		return exitWith(exit)
	}
	return nil
}

// recoverCrashed restores what an earlier session left in the journal, before this one touches anything.
func (s *devSession) recoverCrashed(ctx context.Context) error {
	entries := s.journal.Entries()
	if len(entries) == 0 {
		return nil
	}
	a := s.a
	a.ui.warn("An earlier session left %s patched: restoring it first", plural(len(entries), "function"))
	cfg, err := a.awsConfig(ctx, s.c, entries[0].Region)
	if err != nil {
		return err
	}
	p := &lambdaenv.Patcher{Client: lambda.NewFromConfig(cfg), Journal: s.journal, Wait: true, Progress: a.restoreProgress}
	if _, err := p.Restore(ctx, entries, lambdaenv.RestoreOptions{}); err != nil {
		return leftPatched(fmt.Errorf("restoring what an earlier session left: %s: %w\n  run `stptunnel env restore` to finish", functionList(err), err))
	}
	a.ui.ok("Lambda env vars restored (%s)", plural(len(entries), "function"))
	return nil
}

// start runs detect, opens the tunnels the functions need and patches them. ready is false when no function
// needs a tunnel.
func (s *devSession) start(ctx context.Context) (ready bool, err error) {
	a, c, d := s.a, s.c, s.doc
	if err := a.detect(c, d); err != nil {
		return false, err
	}
	functions, err := d.Functions()
	if err != nil {
		return false, err
	}
	if len(functions) == 0 {
		a.ui.info("No function needs a tunnel: nothing to patch")
		return false, nil
	}
	specs, err := a.tunnelSpecs(c, d)
	if err != nil {
		return false, err
	}
	specs = slices.DeleteFunc(specs, func(sp tunnel.Spec) bool { return !bound(functions, sp.Resource.Name) })
	if len(specs) > 0 && serverHost(specs[0].Server) == defaultBoreServer {
		a.ui.warn("bore.pub is a public server: while this session runs, anyone who finds the port reaches %s. "+
			"For sensitive data use a self-hosted server (`stptunnel bore server --secret ...`)", resourceNames(specs))
	}
	if s.tunnels, err = tunnel.Open(ctx, specs, a.tunnelOptions()); err != nil {
		return false, err
	}
	tunnels := s.tunnels.Tunnels()
	for _, t := range tunnels {
		a.ui.ok("Starting tunnel: %s → %s", t.Resource, t.Public)
	}
	if err := d.Set(doc.FieldTunnels, tunnels); err != nil {
		return false, err
	}
	cfg, err := a.awsConfig(ctx, c, d.Region())
	if err != nil {
		return false, err
	}
	s.patcher = &lambdaenv.Patcher{
		Client:      lambda.NewFromConfig(cfg),
		Journal:     s.journal,
		Concurrency: c.Int(flagConcurrency),
		Wait:        !c.Bool(flagNoWait),
		DryRun:      c.Bool(flagDryRun),
		Progress:    a.patchProgress,
	}
	if err := s.patch(ctx, ""); err != nil {
		return false, err
	}
	patches, _ := d.Patches()
	if err := nothingPatched(patches, s.patcher.DryRun); err != nil {
		return false, err
	}
	if s.patcher.DryRun {
		a.ui.ok("Dry run: %s would use %s; nothing was written", plural(len(patches), "function"), plural(len(tunnels), "tunnel"))
	} else {
		a.ui.ok("Ready: %s %s %s", plural(len(patches), "function"), verb(len(patches), "uses", "use"), plural(len(tunnels), "tunnel"))
	}
	if err := a.summarize(d, doc.FieldTunnels, doc.FieldPatches, doc.FieldSkipped); err != nil {
		return false, err
	}
	return true, nil
}

// patch patches the functions bound to resource ("" for all), with the tunnels' current addresses.
func (s *devSession) patch(ctx context.Context, resource string) error {
	plans, err := patchPlans(s.doc)
	if err != nil {
		return err
	}
	if resource != "" {
		plans = slices.DeleteFunc(plans, func(p lambdaenv.Plan) bool {
			return !slices.ContainsFunc(p.Bindings, func(b doc.Binding) bool { return b.Resource == resource })
		})
	}
	s.a.announcePatch(s.patcher, len(plans))
	res, err := s.patcher.Patch(ctx, plans)
	if merr := mergePatches(s.doc, res.Patches); merr != nil {
		return merr
	}
	for _, sk := range res.Skipped {
		if aerr := s.doc.Append(doc.FieldSkipped, sk); aerr != nil {
			return aerr
		}
	}
	return err
}

// run holds the ready session: it runs COMMAND or waits for a signal, following the tunnels meanwhile.
// It returns the exit code the session should end with.
func (s *devSession) run(ctx context.Context, command []string) int {
	a := s.a
	var done chan int
	var cmd *exec.Cmd
	if a.duringSession != nil {
		done = make(chan int, 1)
		go func() {
			if err := a.duringSession(ctx, s.doc); err != nil {
				a.ui.fail("%v", err)
				done <- ExitFailed
				return
			}
			done <- ExitOK
		}()
	} else if len(command) > 0 {
		var err error
		if cmd, err = s.startCommand(command); err != nil {
			a.ui.fail("%v", err)
			return ExitFailed
		}
		done = make(chan int, 1)
		go func() { done <- commandExit(cmd.Wait()) }()
	} else {
		if err := a.writeDocument(s.doc); err != nil {
			a.ui.fail("%v", err)
			return ExitFailed
		}
		a.ui.info("Press Ctrl+C to restore the functions and close the tunnels")
	}
	for {
		select {
		case code := <-done:
			return code
		case sig := <-s.signals:
			if cmd == nil {
				a.ui.plain("")
				return ExitOK
			}
			// The command ends the session: pass the signal on and wait for it (a terminal's Ctrl+C reached it
			// already; a kill did not).
			_ = cmd.Process.Signal(sig)
			return <-done
		case ev := <-s.tunnels.Events():
			s.follow(ctx, ev)
		}
	}
}

// follow reacts to a tunnel's change: a tunnel back on another port is followed by its functions.
func (s *devSession) follow(ctx context.Context, ev tunnel.Event) {
	a := s.a
	if ev.Kind != tunnel.Moved {
		a.reportTunnelEvent(ev)
		return
	}
	a.ui.warn("Tunnel %s came back on a new address: %s → %s; patching its functions again", ev.Resource, ev.Previous, ev.Public)
	if err := s.doc.Set(doc.FieldTunnels, s.tunnels.Tunnels()); err != nil {
		a.ui.fail("%v", err)
		return
	}
	if err := s.patch(ctx, ev.Resource); err != nil {
		a.ui.fail("re-patching after %s moved: %v", ev.Resource, err)
		return
	}
	a.ui.ok("Functions using %s now point at %s", ev.Resource, ev.Public)
}

// cleanup restores the variables, then closes the tunnels. The first signal during cleanup is ignored with a
// note; the second abandons the restore. It reports whether functions were left patched.
func (s *devSession) cleanup() (leftPatched bool) {
	a := s.a
	if s.patcher != nil && !s.patcher.DryRun && s.journal.Len() > 0 {
		a.ui.info("Restoring Lambda env vars...")
		ctx, cancel := context.WithCancel(context.Background())
		type result struct {
			restores []doc.Restore
			err      error
		}
		done := make(chan result, 1)
		go func() {
			restores, err := s.patcher.Restore(ctx, s.journal.Entries(), lambdaenv.RestoreOptions{})
			done <- result{restores, err}
		}()
		interrupts := 0
		var res result
	wait:
		for {
			select {
			case res = <-done:
				break wait
			case <-s.signals:
				interrupts++
				if interrupts == 1 {
					a.ui.warn("Cleanup is running: press Ctrl+C again to abandon it (functions would stay patched)")
					continue
				}
				a.ui.warn("Cleanup abandoned")
				cancel()
				res = <-done
				break wait
			}
		}
		cancel()
		_ = recordRestores(s.doc, nil, res.restores)
		_ = a.summarize(s.doc, doc.FieldRestores)
		if res.err != nil || s.journal.Len() > 0 {
			a.ui.fail("Left patched: %s", strings.Join(journalFunctions(s.journal), ", "))
			leftPatched = true
		} else {
			a.reportRestored(res.restores)
		}
	}
	if s.tunnels != nil {
		a.ui.info("Stopping tunnels...")
		_ = s.tunnels.Close()
		a.ui.ok("Tunnels stopped")
	}
	if !leftPatched {
		a.ui.ok("Cleanup complete")
	}
	return leftPatched
}

// runCommand runs COMMAND when no function needed a tunnel: the session is the command alone.
func (s *devSession) runCommand(ctx context.Context, command []string) int {
	cmd, err := s.startCommand(command)
	if err != nil {
		s.a.ui.fail("%v", err)
		return ExitFailed
	}
	done := make(chan int, 1)
	go func() { done <- commandExit(cmd.Wait()) }()
	for {
		select {
		case code := <-done:
			return code
		case sig := <-s.signals:
			_ = cmd.Process.Signal(sig)
		}
	}
}

// runCommandOnly is --no-tunnel.
func (a *app) runCommandOnly(ctx context.Context, command []string) error {
	s := &devSession{a: a, signals: make(chan os.Signal, 4)}
	signal.Notify(s.signals, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(s.signals)
	if code := s.runCommand(ctx, command); code != ExitOK {
		return exitWith(code)
	}
	return nil
}

// startCommand starts COMMAND with the session's streams. The environment tells it where the session is.
func (s *devSession) startCommand(command []string) (*exec.Cmd, error) {
	a := s.a
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.stdin, a.stdout, a.stderr
	cmd.Env = os.Environ()
	if s.c != nil {
		cmd.Env = append(cmd.Env, envStateDir+"="+stateDir(s.c))
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", command[0], err)
	}
	return cmd, nil
}

// commandExit is the exit code of a finished command: its own, or 128+signal as shells report it.
func commandExit(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if code := ee.ExitCode(); code >= 0 {
			return code
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
	}
	return ExitFailed
}

func bound(functions []doc.Function, resource string) bool {
	for _, f := range functions {
		for _, b := range f.Bindings {
			if b.Resource == resource {
				return true
			}
		}
	}
	return false
}

func resourceNames(specs []tunnel.Spec) string {
	names := make([]string, len(specs))
	for i, sp := range specs {
		names[i] = sp.Resource.Name
	}
	return strings.Join(names, ", ")
}

func serverHost(server string) string {
	host, _, ok := strings.Cut(server, ":")
	if !ok {
		return server
	}
	return host
}

func journalFunctions(j *lambdaenv.Journal) []string {
	var names []string
	for _, e := range j.Entries() {
		names = append(names, e.Function)
	}
	return names
}

func verb(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

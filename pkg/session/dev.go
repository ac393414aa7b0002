package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
	"github.com/stptunnel/stptunnel/pkg/tunnel"
)

// DevOptions are dev's inputs beyond the document: the options of each step, and what runs while the session
// is up.
type DevOptions struct {
	Detect DetectOptions
	Tunnel TunnelOptions
	Patch  PatchOptions

	// Command runs while the session is up, with Stdin, Stdout and Stderr and STPTUNNEL_STATE_DIR in its
	// environment; its exit ends the session and is dev's exit code.
	Command        []string
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// During, when set, runs in place of Command (demo's "cloud side"); an error ends the session with exit 1.
	// Its context is cancelled when the session ends without it (a lost tunnel).
	During func(ctx context.Context, d *doc.Document) error
	// Output prints the document once the session is ready, when neither Command nor During is given; the
	// session then holds until a signal.
	Output func(d *doc.Document) error
	// Interrupts are the signals that end the session. During start-up the first stops it; once ready it ends
	// the session (passed on to Command); during cleanup the first is ignored with a note and the second
	// abandons the restore, leaving the functions to the journal.
	Interrupts <-chan os.Signal
}

// ExitError is the end of a session with a command's exit code (or 1 when During failed): the outcome was
// reported already.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Reported is an error that ended the session and was reported already (as a Failed or Signalled event): the
// exit code is Err's, and nothing more needs saying.
type Reported struct{ Err error }

func (e *Reported) Error() string { return e.Err.Error() }
func (e *Reported) Unwrap() error { return e.Err }

// Failed: an error that ends the session's work, reported before the cleanup that follows it.
type Failed struct{ Err error }

func (Failed) event() {}

// ErrInterrupted: a signal stopped the session's start-up.
var ErrInterrupted = errors.New("interrupted")

// activityEvery is how often a holding session reports what its tunnels carry.
const activityEvery = time.Second

// dev is one run of Dev: what it opened and patched, so cleanup undoes exactly that.
type dev struct {
	opts    DevOptions
	env     Env
	doc     *doc.Document
	state   *State
	patcher *Patcher
	tunnels *tunnel.Session
}

// Dev runs a whole session: it takes the state dir's lock, restores what a crashed session left in the journal,
// then detects, opens the tunnels the functions need and patches them; it holds the session (running Command or
// During, or until a signal), patching the functions of a tunnel that moves again; then it restores every
// variable and closes the tunnels, in that order. The error is a *LeftPatchedError when functions stay patched,
// an *ExitError when the outcome was already reported (a failed command, a start-up error, a signal).
func Dev(ctx context.Context, d *doc.Document, opts DevOptions, env Env) error {
	state, err := OpenState(env.StateDir)
	if err != nil {
		return err
	}
	defer state.Close()
	s := &dev{opts: opts, env: env, doc: d, state: state}

	// A signal during start-up cancels it; cleanup then undoes whatever was already done.
	startCtx, cancelStart := context.WithCancel(ctx)
	defer cancelStart()
	stopWatch, watchDone := make(chan struct{}), make(chan struct{})
	interrupted := false
	go func() {
		defer close(watchDone)
		select {
		case sig := <-opts.Interrupts:
			interrupted = true
			env.report(Signalled{Signal: sig.String(), Starting: true})
			cancelStart()
		case <-stopWatch:
		}
	}()
	stopWatching := func() {
		close(stopWatch)
		<-watchDone // interrupted is settled from here on
	}
	if err := s.recoverCrashed(startCtx); err != nil {
		stopWatching()
		return err
	}
	ready, startErr := s.start(startCtx)
	stopWatching()

	var end error
	switch {
	case interrupted:
		end = &Reported{Err: ErrInterrupted}
	case startErr != nil:
		env.report(Failed{Err: startErr})
		end = &Reported{Err: startErr}
	case ready:
		end = s.run(ctx)
	case len(opts.Command) > 0:
		end = s.runCommandAlone(ctx)
	}
	if err := s.cleanup(); err != nil {
		return &LeftPatchedError{Err: fmt.Errorf("%w\n  run `stptunnel env restore` to put them back (journal %s)", err, state.Journal.Path())}
	}
	return end
}

// recoverCrashed restores what an earlier session left in the journal, before this one touches anything.
func (s *dev) recoverCrashed(ctx context.Context) error {
	entries := s.state.Journal.Entries()
	if len(entries) == 0 {
		return nil
	}
	s.env.report(Recovering{Functions: len(entries)})
	s.env.report(Restoring{Functions: entryNames(entries)})
	p, err := newRestorer(ctx, entries[0].Region, s.state.Journal, s.env)
	if err != nil {
		return err
	}
	restores, err := p.Restore(ctx, entries, lambdaenv.RestoreOptions{})
	if err != nil {
		return &LeftPatchedError{Err: fmt.Errorf("restoring what an earlier session left: %s: %w\n  run `stptunnel env restore` to finish", FailedFunctions(err), err)}
	}
	s.env.report(Restored{Restores: restores})
	return nil
}

// start runs detect, opens the tunnels the functions need and patches them. ready is false when no function
// needs a tunnel.
func (s *dev) start(ctx context.Context) (ready bool, err error) {
	d, env := s.doc, s.env
	if err := Detect(ctx, d, s.opts.Detect, env); err != nil {
		return false, err
	}
	functions, err := d.Functions()
	if err != nil {
		return false, err
	}
	if len(functions) == 0 {
		env.report(NothingToDo{Message: "No function needs a tunnel: nothing to patch"})
		return false, nil
	}
	specs, err := TunnelSpecs(d, s.opts.Tunnel)
	if err != nil {
		return false, err
	}
	specs = boundSpecs(specs, functions)
	if len(specs) > 0 {
		for _, server := range specs[0].Servers {
			if host, _, err := bore.SplitServer(server.Addr); err == nil && host == tunnel.DefaultServer {
				env.report(PublicServer{Server: host, Resources: resourceNames(specs)})
			}
		}
	}
	if s.tunnels, err = OpenTunnels(ctx, d, specs, s.opts.Tunnel, env); err != nil {
		return false, err
	}
	if s.patcher, err = NewPatcher(ctx, d.Region(), s.opts.Patch, s.state, env); err != nil {
		return false, err
	}
	if !s.patcher.DryRun() {
		// One session per run: its id marks every function this run patches, and re-patches.
		if err := d.Set(doc.FieldSession, NewSession(s.opts.Patch.By, time.Now())); err != nil {
			return false, err
		}
	}
	if err := s.patcher.Patch(ctx, d, ""); err != nil {
		return false, err
	}
	patches, err := d.Patches()
	if err != nil {
		return false, err
	}
	if err := nothingPatched(patches, s.patcher.DryRun()); err != nil {
		return false, err
	}
	env.report(Ready{Patched: len(patches), Tunnels: len(s.tunnels.Tunnels()), DryRun: s.patcher.DryRun(), Doc: d})
	return true, nil
}

// run holds the ready session: it runs During or Command, or waits for a signal, following the tunnels
// meanwhile. A lost tunnel ends the session: During's context is cancelled and Command gets SIGTERM. It returns
// how the session should end.
func (s *dev) run(ctx context.Context) error {
	var done chan int
	var cmd *exec.Cmd
	duringCtx, stopDuring := context.WithCancel(ctx)
	defer stopDuring()
	switch {
	case s.opts.During != nil:
		done = make(chan int, 1)
		go func() {
			if err := s.opts.During(duringCtx, s.doc); err != nil && duringCtx.Err() == nil {
				s.env.report(Failed{Err: err})
				done <- 1
				return
			}
			done <- 0
		}()
	case len(s.opts.Command) > 0:
		var err error
		if cmd, err = s.startCommand(); err != nil {
			s.env.report(Failed{Err: err})
			return &Reported{Err: err}
		}
		done = make(chan int, 1)
		go func() { done <- commandExit(cmd.Wait()) }()
	default:
		if s.opts.Output != nil {
			if err := s.opts.Output(s.doc); err != nil {
				s.env.report(Failed{Err: err})
				return &Reported{Err: err}
			}
		}
		s.env.report(Waiting{})
	}
	// What the tunnels carry is reported once a second, while the session holds.
	activity := time.NewTicker(activityEvery)
	defer activity.Stop()
	s.env.report(TunnelActivity{Tunnels: s.tunnels.Activity()})
	defer func() { s.env.report(TunnelActivity{Tunnels: s.tunnels.Activity()}) }() // the last word is current
	for {
		select {
		case <-activity.C:
			s.env.report(TunnelActivity{Tunnels: s.tunnels.Activity()})
		case code := <-done:
			return exitCode(code)
		case sig := <-s.opts.Interrupts:
			if cmd == nil {
				s.env.report(Signalled{Signal: sig.String()})
				return nil
			}
			// The command ends the session: pass the signal on and wait for it (a terminal's Ctrl+C reached it
			// already; a kill did not).
			_ = cmd.Process.Signal(sig)
			return exitCode(<-done)
		case ev := <-s.tunnels.Events():
			if err := s.follow(ctx, ev); err != nil {
				// The session cannot go on: end what runs in it, then clean up.
				stopDuring()
				if cmd != nil && cmd.Process.Signal(syscall.SIGTERM) != nil {
					_ = cmd.Process.Kill()
				}
				if done != nil {
					<-done
				}
				return err
			}
		}
	}
}

// follow reacts to a tunnel's change: a tunnel back on another address, or on another server, is followed by
// exactly the functions bound to its resource; a lost tunnel ends the session (the error, reported already).
func (s *dev) follow(ctx context.Context, ev tunnel.Event) error {
	switch ev.Kind {
	case tunnel.Moved:
	case tunnel.Lost:
		s.env.report(TunnelChanged{ev})
		return &Reported{Err: fmt.Errorf("tunnel %s is lost: %w", ev.Resource, ev.Err)}
	default:
		s.env.report(TunnelChanged{ev})
		return nil
	}
	following := Following{Resource: ev.Resource, Previous: ev.Previous, Public: ev.Public, Server: ev.Server, PreviousServer: ev.PreviousServer}
	s.env.report(following)
	if err := s.doc.Set(doc.FieldTunnels, s.tunnels.Tunnels()); err != nil {
		s.env.report(Failed{Err: err})
		return nil
	}
	if err := s.patcher.Patch(ctx, s.doc, ev.Resource); err != nil {
		s.env.report(Failed{Err: fmt.Errorf("re-patching after %s moved: %w", ev.Resource, err)})
		return nil
	}
	following.Done = true
	s.env.report(following)
	return nil
}

// cleanup restores the variables, then closes the tunnels. The first signal during the restore is ignored with a
// note; the second abandons it. It reports whether functions were left patched, and why: one outcome, said once.
func (s *dev) cleanup() (leftPatched error) {
	if s.tunnels == nil && s.patcher == nil {
		return nil // nothing was started: nothing to clean up, nothing to say
	}
	journal := s.state.Journal
	if s.patcher != nil && !s.patcher.DryRun() && journal.Len() > 0 {
		s.env.report(Restoring{Functions: entryNames(journal.Entries())})
		ctx, cancel := context.WithCancel(context.Background())
		type result struct {
			restores []doc.Restore
			err      error
		}
		done := make(chan result, 1)
		go func() {
			restores, err := s.patcher.Restore(ctx, journal.Entries())
			done <- result{restores, err}
		}()
		noted, abandoned := false, false
		var res result
	wait:
		for {
			select {
			case res = <-done:
				break wait
			case <-s.opts.Interrupts:
				if !noted {
					noted = true
					s.env.report(CleanupInterrupted{})
					continue
				}
				abandoned = true
				cancel()
				res = <-done
				break wait
			}
		}
		cancel()
		_ = recordRestores(s.doc, nil, res.restores)
		if res.err != nil || journal.Len() > 0 {
			names := entryNames(journal.Entries())
			why := res.err
			switch {
			case abandoned:
				s.env.report(CleanupInterrupted{Abandoned: true})
				why = errors.New("the restore was abandoned")
			case why == nil:
				why = errors.New("the journal still holds them")
			}
			s.env.report(LeftPatched{Functions: names, Err: why, Doc: s.doc})
			leftPatched = fmt.Errorf("%s left patched: %w", strings.Join(names, ", "), why)
		} else {
			s.env.report(Restored{Restores: res.restores, Doc: s.doc})
		}
	}
	if s.tunnels != nil {
		s.env.report(Stopping{})
		_ = s.tunnels.Close()
		s.env.report(Stopped{})
	}
	if leftPatched == nil {
		s.env.report(CleanupComplete{})
	}
	return leftPatched
}

// runCommandAlone runs Command when no function needed a tunnel: the session is the command alone.
func (s *dev) runCommandAlone(ctx context.Context) error {
	return RunCommand(ctx, s.opts.Command, s.commandIO(), s.opts.Interrupts, s.env)
}

// CommandIO is where a command run by the session reads and writes, and what it finds in its environment.
type CommandIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Env            []string // added to this process's environment
}

func (s *dev) commandIO() CommandIO {
	return CommandIO{Stdin: s.opts.Stdin, Stdout: s.opts.Stdout, Stderr: s.opts.Stderr,
		Env: []string{"STPTUNNEL_STATE_DIR=" + s.env.StateDir}}
}

func (s *dev) startCommand() (*exec.Cmd, error) {
	return startCommand(s.opts.Command, s.commandIO())
}

// RunCommand runs command to its end, passing it every interrupt; it is dev --no-tunnel, and dev when no
// function needs a tunnel. A non-zero exit is an *ExitError with the command's code.
func RunCommand(ctx context.Context, command []string, cio CommandIO, interrupts <-chan os.Signal, env Env) error {
	cmd, err := startCommand(command, cio)
	if err != nil {
		env.report(Failed{Err: err})
		return &Reported{Err: err}
	}
	done := make(chan int, 1)
	go func() { done <- commandExit(cmd.Wait()) }()
	for {
		select {
		case code := <-done:
			return exitCode(code)
		case sig := <-interrupts:
			_ = cmd.Process.Signal(sig)
		}
	}
}

// startCommand starts command with the session's streams.
func startCommand(command []string, cio CommandIO) (*exec.Cmd, error) {
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = cio.Stdin, cio.Stdout, cio.Stderr
	cmd.Env = append(os.Environ(), cio.Env...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", command[0], err)
	}
	return cmd, nil
}

// commandExit is the exit code of a finished command: its own, or 128+signal as shells report it.
func commandExit(err error) int {
	if err == nil {
		return 0
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
	return 1
}

// exitCode is nil for 0, else an *ExitError carrying the code.
func exitCode(code int) error {
	if code == 0 {
		return nil
	}
	return &ExitError{Code: code}
}

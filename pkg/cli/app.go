// Package cli is stptunnel's command line (docs/CONTRACT.md): the urfave/cli command tree, flags turned into the
// typed options of pkg/session (validated once, errors naming the flag), the session's events rendered as human
// output on stderr and as GitHub Actions workflow commands, and errors mapped to exit codes. The work itself is
// pkg/session's: no command here holds pipeline logic.
//
// Main is the whole program: cmd/stptunnel calls it and exits with what it returns, and tests call the same entry
// point. Nothing here below Main touches os.Stdin, os.Stdout or os.Exit: the streams are passed in. The package is
// the tool's own: its API may change.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/stptunnel/stptunnel/pkg/doc"
)

// BuildInfo is set by the linker (-X main.version=...) and passed in by main.
type BuildInfo struct {
	Version, Commit, Date string
}

// resolved fills what the linker did not set from the module build information (go install, go run).
func (b BuildInfo) resolved() BuildInfo {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	modified := false
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision" && b.Commit == "":
			b.Commit = s.Value
		case s.Key == "vcs.time" && b.Date == "":
			b.Date = s.Value
		case s.Key == "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if b.Version == "" || b.Version == "dev" {
		switch v := info.Main.Version; {
		case v != "" && v != "(devel)": // go install …@vX.Y.Z, or a pseudo-version
			b.Version = v
		case b.Commit != "": // a source build: say which source
			b.Version = "dev+" + b.Commit[:min(12, len(b.Commit))]
			if modified {
				b.Version += "-modified"
			}
		default:
			b.Version = "dev"
		}
	}
	return b
}

// app holds what every command shares for one run of Main.
type app struct {
	build  BuildInfo
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	ui     *ui
	gh     *github
	// waits shows what a long Lambda step still waits for; activity what the tunnels carry.
	waits    *waitTracker
	activity activityWatch
	// out is --out FILE: the document goes there instead of stdout.
	out string
	// interrupts receives SIGINT, SIGTERM and SIGHUP: the one place signals reach the program. A command that
	// only needs to stop takes interruptible(ctx); dev reads it itself (a second Ctrl+C abandons its cleanup).
	interrupts chan os.Signal
}

// Main runs stptunnel with args (args[0] is the program name) and returns the exit code.
func Main(ctx context.Context, build BuildInfo, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{build: build.resolved(), stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv,
		interrupts: make(chan os.Signal, 4)}
	signal.Notify(a.interrupts, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(a.interrupts)
	a.gh = newGitHub(a.getenv, stderr)
	a.ui = &ui{w: stderr, gh: a.gh, live: isTerminal(stderr), color: isTerminal(stderr) && a.getenv(envNoColor) == ""}
	a.waits = newWaitTracker(a.ui, a.ui.live)
	if d, err := time.ParseDuration(a.getenv(envProgressEvery)); err == nil && d > 0 {
		a.waits.every, a.waits.tick = d, d
	}
	defer a.waits.end()
	err := a.cliApp().RunContext(ctx, args)
	code := exitCode(err)
	if err != nil && !silent(err) {
		a.ui.fail("%v", err)
		a.gh.errorf(a.ui.redact(err.Error()))
	}
	return code
}

// interruptible returns a context cancelled by the first interrupt: the way every command but dev stops.
func (a *app) interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-a.interrupts:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (a *app) cliApp() *cli.App {
	ca := &cli.App{
		Name:  "stptunnel",
		Usage: "let deployed AWS Lambda functions use the databases running on your machine",
		Description: "detect → tunnel open → env patch → env restore, each reading and writing one JSON document,\n" +
			"or all at once with `stptunnel dev`. Try `stptunnel demo` first: it needs no AWS account.",
		Version:                   a.build.Version,
		Reader:                    a.stdin,
		Writer:                    a.stdout,
		ErrWriter:                 a.stderr,
		Flags:                     globalFlags(),
		HideHelpCommand:           true,
		DisableSliceFlagSeparator: true, // --local values may contain commas (multi-host URLs)
		Suggest:                   true,
		ExitErrHandler:            func(*cli.Context, error) {}, // Main decides exit codes
		OnUsageError:              onUsageError,
		Commands: []*cli.Command{
			a.detectCommand(),
			a.tunnelCommand(),
			a.envCommand(),
			a.devCommand(),
			a.boreCommand(),
			a.demoCommand(),
			a.versionCommand(),
			a.completionCommand(),
			a.manCommand(),
		},
	}
	ca.Commands = append(ca.Commands, a.hiddenCommands()...)
	forEachCommand(ca.Commands, func(c *cli.Command) {
		c.OnUsageError = onUsageError
		if c.Action != nil {
			c.Before = a.configure
		}
	})
	return ca
}

// configure applies the output flags, which may be given before or after the command.
func (a *app) configure(c *cli.Context) error {
	a.ui.quiet = globalBool(c, flagQuiet)
	if slices.Contains(c.FlagNames(), flagOut) {
		a.out = strings.TrimSpace(c.String(flagOut))
	}
	if globalBool(c, flagNoColor) {
		a.ui.color = false
	}
	return nil
}

func onUsageError(_ *cli.Context, err error, _ bool) error {
	return usageError("%v (see --help)", err)
}

func forEachCommand(cmds []*cli.Command, fn func(*cli.Command)) {
	for _, c := range cmds {
		fn(c)
		forEachCommand(c.Subcommands, fn)
	}
}

// readDocument reads the document from stdin, or starts an empty one when stdin is a terminal or empty.
func (a *app) readDocument() (*doc.Document, error) {
	if a.stdin == nil || isTerminal(a.stdin) {
		return doc.New(), nil
	}
	r := doc.NewReader(a.stdin, "stdin")
	d, err := r.Next()
	switch {
	case errors.Is(err, io.EOF):
		return doc.New(), nil
	case err != nil:
		return nil, asUsage(err)
	}
	if err := r.CheckEnd(); err != nil {
		return nil, asUsage(err)
	}
	a.maskDocument(d) // under GitHub Actions: before anything this command prints
	return d, nil
}

// readDocuments reads every document on stdin (env restore), or one empty document when stdin is a terminal or
// empty.
func (a *app) readDocuments() ([]*doc.Document, error) {
	if a.stdin == nil || isTerminal(a.stdin) {
		return []*doc.Document{doc.New()}, nil
	}
	r := doc.NewReader(a.stdin, "stdin")
	var docs []*doc.Document
	for {
		d, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, asUsage(err)
		}
		a.maskDocument(d)
		docs = append(docs, d)
	}
	if len(docs) == 0 {
		docs = append(docs, doc.New())
	}
	return docs, nil
}

// finishDocument ends a step: it reports the fields the step added to GitHub Actions (outputs and job summary;
// nothing elsewhere), then prints the document.
func (a *app) finishDocument(d *doc.Document, fields ...string) error {
	if err := a.summarize(d, fields...); err != nil {
		return err
	}
	return a.writeDocument(d)
}

// writeDocument prints the document on stdout, the only thing stdout ever carries, or writes it to --out
// (atomically, 0600: it may hold passwords).
func (a *app) writeDocument(d *doc.Document) error {
	if a.out != "" {
		if err := d.WriteFile(a.out); err != nil {
			return fmt.Errorf("writing the document to %s: %w", a.out, err)
		}
		return nil
	}
	if err := d.Write(a.stdout); err != nil {
		return fmt.Errorf("writing the document to stdout: %w", err)
	}
	if f, ok := a.stdout.(interface{ Sync() error }); ok {
		_ = f.Sync() // a pipe reader (env patch) is waiting for it; Sync fails harmlessly on pipes
	}
	return nil
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
